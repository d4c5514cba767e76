"""The store, generated files and sync, on a real SQLite database and a real DAG folder."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlwf_constructors import (
    Constructors,
    InstanceExistsError,
    InstanceNotFoundError,
    InstanceStore,
    ParameterValidationError,
    Settings,
    StoreError,
)

HERE = Path(__file__).parent
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def service(tmp_path: Path) -> Constructors:
    dags = tmp_path / "dags"
    dags.mkdir()
    settings = Settings(
        store_url=f"sqlite:///{tmp_path / 'store.db'}",
        dags_folder=dags,
        bundle_modules=("sample_constructors",),
    )
    return Constructors(settings, airflow_db=False)


def test_migrate_records_its_version_and_is_idempotent(tmp_path: Path) -> None:
    """migrate() creates the prefixed tables once and a second run changes nothing."""
    store = InstanceStore(f"sqlite:///{tmp_path / 's.db'}")
    assert store.current_version() == 0
    assert store.migrate() == 4 and store.migrate() == 4
    tables = sa.inspect(store.engine).get_table_names()
    assert sorted(tables) == [
        "mlwf_constructor_dag_ids",
        "mlwf_constructor_instances",
        "mlwf_constructor_locks",
        "mlwf_constructor_schema_version",
    ]


def test_version_1_store_is_upgraded_with_its_instances(tmp_path: Path) -> None:
    """A store at schema version 1 (no lock table) migrates to 3 and its instances stay writable."""
    from mlwf_constructors import _store

    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _store.schema_version.create(conn)
        _store.MIGRATIONS[1](conn)
        conn.execute(_store.schema_version.insert().values(version=1, applied_at=T0))
        conn.execute(
            _store.instances.insert().values(
                instance_id="kept",
                constructor="sample",
                constructor_version="2.1.0",
                values_json='{"epochs": 1}',
                owner="x",
                enabled=False,
                created_at=T0,
                updated_at=T0,
            )
        )
    engine.dispose()
    store = InstanceStore(url)
    assert store.current_version() == 1 and store.migrate() == 4
    record = store.get("kept")
    store.replace(dataclasses.replace(record, values={"epochs": 2}))
    assert store.get("kept").values == {"epochs": 2}


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A store migrated by a newer release is refused with a message naming both versions."""
    store = InstanceStore(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO mlwf_constructor_schema_version VALUES (9, '2026-01-01')")
        )
    with pytest.raises(StoreError, match="version 9 is newer"):
        store.migrate()


def test_create_writes_a_file_that_builds_the_dag(service: Constructors) -> None:
    """create() stores complete values and writes a file that Airflow's DagBag loads as the DAG."""
    record = service.create("churn_v1", "sample", {"epochs": 2}, owner="ann")
    assert record.values["dataset"] == "iris" and record.constructor_version == "2.1.0"
    assert service.store.get("churn_v1").values == record.values
    path = service.path("churn_v1")
    assert path.parent.name == "mlwf_constructed"
    out = _dagbag(service.settings.dags_folder)
    assert "churn_v1: a,b" in out, out


def test_hostile_values_never_become_code(service: Constructors, tmp_path: Path) -> None:
    """Values holding code, quotes, newlines and Jinja round-trip exactly and run nothing."""
    sentinel = tmp_path / "pwned"
    hostile = [
        f'"); import os; os.system("touch {sentinel}"); ("',
        f"'''\nimport os; os.system('touch {sentinel}')\n'''",
        "{{ 7 * 7 }}\\\r\n\t\x00ü",
    ]
    service.create(
        "hostile",
        "sample",
        {"epochs": 1, "note": hostile[0], "weights": {hostile[1]: 1.0}},
        owner="x",
    )
    text = service.path("hostile").read_text()
    assert "import os" not in text and "touch" not in text
    assert len(text.splitlines()) == 5
    out = _dagbag(service.settings.dags_folder, show="note")
    assert repr(hostile[0]) in out
    assert not sentinel.exists()


def test_invalid_create_leaves_nothing(service: Constructors) -> None:
    """A rejected create stores no row and writes no file."""
    with pytest.raises(ParameterValidationError):
        service.create("bad", "sample", {"epochs": -1}, owner="x")
    with pytest.raises(InstanceNotFoundError):
        service.store.get("bad")
    assert not service.path("bad").exists()


def test_foreign_file_blocks_create_and_is_kept(service: Constructors) -> None:
    """A hand-written file at the instance's path is a collision; it is neither replaced nor removed."""
    path = service.path("taken")
    path.parent.mkdir(parents=True)
    path.write_text("# mine\n")
    with pytest.raises(InstanceExistsError, match="not generated"):
        service.create("taken", "sample", {"epochs": 1}, owner="x")
    assert path.read_text() == "# mine\n"
    with pytest.raises(InstanceNotFoundError):
        service.store.get("taken")
    service.sync()
    assert path.read_text() == "# mine\n"


def test_concurrent_store_creates_one_wins(service: Constructors) -> None:
    """Sixteen threads creating one id: exactly one succeeds, the others get InstanceExistsError."""
    barrier = threading.Barrier(16)
    results: list[str] = []

    def create(i: int) -> None:
        barrier.wait()
        try:
            service.create("race", "sample", {"epochs": i + 1}, owner=f"t{i}")
            results.append("ok")
        except InstanceExistsError:
            results.append("exists")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["exists"] * 15 + ["ok"]
    winner = service.store.get("race")
    assert f"'epochs': {winner.values['epochs']}" not in service.path("race").read_text()


def test_sync_recreates_missing_and_altered_files_and_removes_orphans(
    service: Constructors,
) -> None:
    """sync() restores deleted and edited files from the store and deletes generated orphans only."""
    service.create("a", "sample", {"epochs": 1}, owner="x")
    service.create("b", "sample", {"epochs": 2}, owner="x")
    service.create("c", "sample", {"epochs": 3}, owner="x", enabled=False)
    original_b = service.path("b").read_text()
    service.path("a").unlink()
    service.path("b").write_text(original_b.replace("dag =", "dag2 ="))
    orphan = service.path("gone")
    orphan.write_text(original_b)
    foreign = service.path("a").parent / "notes.py"
    foreign.write_text("# not ours\n")
    report = service.sync()
    assert sorted(report.written) == ["a", "b"] and report.removed == ["instance__gone.py"]
    assert service.path("b").read_text() == original_b
    assert not service.path("c").exists() and foreign.exists()
    assert service.sync().written == []


def test_sync_never_overwrites_a_hand_written_file_of_an_instance(
    service: Constructors,
) -> None:
    """A hand-written file at an enabled instance's path is kept by sync, which reports the instance as failed."""
    service.create("mine", "sample", {"epochs": 1}, owner="x")
    service.path("mine").write_text("# mine\n")
    report = service.sync()
    assert "not generated" in report.failed["mine"] and report.written == []
    assert service.path("mine").read_text() == "# mine\n"


def test_update_and_delete(service: Constructors) -> None:
    """update() merges values and rewrites the file; delete() removes row and file."""
    service.create("u", "sample", {"epochs": 1}, owner="x")
    before = service.path("u").read_text()
    updated = service.update("u", values={"mode": "slow"})
    assert updated.values["mode"] == "slow" and updated.values["epochs"] == 1
    assert service.path("u").read_text() != before
    with pytest.raises(ParameterValidationError, match="'mode'"):
        service.update("u", values={"mode": "warp"})
    assert service.store.get("u").values["mode"] == "slow"
    service.update("u", enabled=False)
    assert not service.path("u").exists()
    service.delete("u")
    with pytest.raises(InstanceNotFoundError):
        service.delete("u")


def _dagbag(dags: Path, show: str = "") -> str:
    """Parse ``dags`` with Airflow's DagBag in a fresh interpreter; print each DAG's tasks."""
    code = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
from airflow.dag_processing.dagbag import DagBag
bag = DagBag({str(dags)!r})
print("errors:", bag.import_errors)
for dag_id, dag in sorted(bag.dags.items()):
    print(f"{{dag_id}}: {{','.join(sorted(dag.task_ids))}}")
    if {show!r}:
        print(repr(dag.params.dump()[{show!r}]))
"""
    env = dict(os.environ, AIRFLOW__CORE__LOAD_EXAMPLES="False")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "errors: {}" in proc.stdout, proc.stdout
    return proc.stdout


def test_an_instance_using_its_own_dag_keeps_that_use(service: Constructors) -> None:
    """Issue 10 item 4: a related DAG the instance uses is kept for authorization even when its id is the instance's own; only defining the own id again is dropped."""
    from mlwf_constructors import RelatedDag
    from mlwf_constructors._related import prepare

    related = prepare(service, "selfie", "related", {"target": "selfie", "side": "selfie"}).related
    assert related == (RelatedDag("selfie", "uses"),)
