"""Concurrent writers of one instance, on SQLite and on real PostgreSQL and MariaDB databases.

SQLite serializes every writer, which hides most races; PostgreSQL and MariaDB (row locks,
READ COMMITTED / REPEATABLE READ) are where they show. The deterministic tests pause one writer
at the step the race needs (just before its file write, or with its temporary file on disk)
with the real code running on both sides, and let the other writer go for a second: before
the per-instance lock the other writer finished in that second and broke the store/file
invariant; with it, the other writer waits.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from mlwf_constructors import (
    Constructors,
    InstanceExistsError,
    InstanceNotFoundError,
    Settings,
    StoreError,
    _materialize as files,
)

KINDS = ["sqlite", "postgresql", "mariadb"]
#: How long the paused writer lets the other one run: ample for an unblocked write here.
RACE_WINDOW = 1.0


@pytest.fixture(params=KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store: a SQLite file, or a throwaway PostgreSQL / MariaDB database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue(
        "postgres_url" if request.param == "postgresql" else "mariadb_url"
    )
    return url


def _settings(store_url: str, tmp_path: Path) -> Settings:
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    return Settings(store_url=store_url, dags_folder=dags, bundle_modules=("sample_constructors",))


@pytest.fixture
def service(store_url: str, tmp_path: Path) -> Iterator[Constructors]:
    svc = Constructors(_settings(store_url, tmp_path), airflow_db=False)
    yield svc
    svc.store.engine.dispose()


def assert_file_matches_store(svc: Constructors, instance_id: str) -> None:
    """The file exists iff the stored instance is enabled, and then renders exactly that record."""
    try:
        record = svc.store.get(instance_id)
    except InstanceNotFoundError:
        record = None
    path = svc.path(instance_id)
    if record is None or not record.enabled:
        assert not path.exists(), f"{path.name} exists but the store holds {record}"
    else:
        assert path.exists(), f"{path.name} is missing for enabled {record}"
        expected = files.render(record, svc.constructor(record.constructor))
        assert path.read_text(encoding="utf-8") == expected, (
            f"{path.name} does not hold the stored values {record.values}"
        )


class Worker(threading.Thread):
    """A thread that runs ``target`` and keeps its exception for the test to inspect."""

    def __init__(self, name: str, target: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as err:  # reported by the test
            self.error = err

    def finish(self) -> None:
        self.join(timeout=60)
        assert not self.is_alive(), f"{self.name} still running after 60 s"
        if self.error is not None:
            raise AssertionError(
                f"{self.name} failed: " + "".join(traceback.format_exception(self.error)).strip()
            )


class Pause:
    """Hold one named thread at a hook point until the test releases it."""

    def __init__(self, thread_name: str) -> None:
        self.thread_name = thread_name
        self.reached = threading.Event()
        self.release = threading.Event()

    def wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread().name == self.thread_name and not self.reached.is_set():
                self.reached.set()
                self.release.wait(timeout=30)
            return real(*args, **kwargs)

        return hooked

    def race(self, paused: Worker, other: Worker) -> None:
        """Start ``paused`` until the hook, give ``other`` RACE_WINDOW seconds, then let both end."""
        paused.start()
        assert self.reached.wait(timeout=30), f"{paused.name} never reached the hook"
        other.start()
        other.join(timeout=RACE_WINDOW)
        self.release.set()
        paused.finish()
        other.finish()


def test_update_racing_delete_leaves_neither_row_nor_file(
    service: Constructors, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 5: a delete that runs while an update writes its file ends with no row and no file."""
    service.create("r", "sample", {"epochs": 1}, owner="x")
    pause = Pause("updater")
    monkeypatch.setattr(files, "write_atomic", pause.wrap(files.write_atomic))
    updater = Worker("updater", lambda: service.update("r", values={"epochs": 2}))
    deleter = Worker("deleter", lambda: service.delete("r"))
    pause.race(updater, deleter)
    with pytest.raises(InstanceNotFoundError):
        service.store.get("r")
    assert_file_matches_store(service, "r")


def test_concurrent_patches_leave_file_and_store_equal(
    service: Constructors, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 5: two concurrent PATCHes of one instance leave the file holding the values the store holds."""
    service.create("p", "sample", {"epochs": 1}, owner="x")
    pause = Pause("first")
    monkeypatch.setattr(files, "write_atomic", pause.wrap(files.write_atomic))
    first = Worker("first", lambda: service.update("p", values={"epochs": 2}))
    second = Worker("second", lambda: service.update("p", values={"epochs": 3}))
    pause.race(first, second)
    assert service.store.get("p").values["epochs"] == 3  # the later PATCH wins
    assert_file_matches_store(service, "p")


def test_patch_merges_over_a_concurrent_patch(
    service: Constructors, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 5: two concurrent PATCHes of different parameters keep both changes (no lost update)."""
    service.create("m", "sample", {"epochs": 1}, owner="x")
    pause = Pause("first")
    monkeypatch.setattr(files, "write_atomic", pause.wrap(files.write_atomic))
    first = Worker("first", lambda: service.update("m", values={"epochs": 2}))
    second = Worker("second", lambda: service.update("m", values={"mode": "slow"}))
    pause.race(first, second)
    values = service.store.get("m").values
    assert (values["epochs"], values["mode"]) == (2, "slow")
    assert_file_matches_store(service, "m")


def test_sync_keeps_an_instance_created_after_its_snapshot(
    service: Constructors, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 5: sync() does not remove the file of an instance created after it listed the store."""
    service.create("old", "sample", {"epochs": 1}, owner="x")
    real_list = service.store.list

    def list_then_create() -> list[Any]:
        snapshot = real_list()
        creator = Worker(
            "creator", lambda: service.create("late", "sample", {"epochs": 2}, owner="y")
        )
        creator.start()
        creator.finish()
        return snapshot

    monkeypatch.setattr(service.store, "list", list_then_create)
    report = service.sync()
    assert "instance__late.py" not in report.removed
    assert service.path("late").exists()
    for instance_id in ("old", "late"):
        assert_file_matches_store(service, instance_id)


def test_sync_keeps_the_temporary_file_of_a_writer_in_progress(
    service: Constructors, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 5: sync() leaves the .part file of an update in progress, so the update completes."""
    service.create("w", "sample", {"epochs": 1}, owner="x")
    pause = Pause("updater")
    # Pause between writing the temporary file and renaming it over the instance file.
    monkeypatch.setattr(os, "replace", pause.wrap(os.replace))
    updater = Worker("updater", lambda: service.update("w", values={"epochs": 5}))
    syncer = Worker("syncer", service.sync)
    pause.race(updater, syncer)
    assert service.store.get("w").values["epochs"] == 5
    assert_file_matches_store(service, "w")
    assert list(service.path("w").parent.glob(".tmp-*")) == []


def test_sync_removes_stale_temporary_files_and_orphans(service: Constructors) -> None:
    """sync() removes a temporary file left by a crashed writer and the file of an id that is not stored."""
    service.create("s", "sample", {"epochs": 1}, owner="x")
    folder = service.path("s").parent
    text = service.path("s").read_text()
    crashed = folder / ".tmp-instance__s+crash.part"
    crashed.write_text(text[:10])
    legacy = folder / ".tmp-abc123.part"  # an older release's name, with no id in it
    legacy.write_text("x")
    os.utime(legacy, (0, 0))
    service.path("orphan").write_text(text)
    report = service.sync()
    assert report.removed == ["instance__orphan.py"]
    assert not crashed.exists() and not legacy.exists()
    assert_file_matches_store(service, "s")
    assert_file_matches_store(service, "orphan")


def test_failed_commit_puts_the_file_back(postgres_url: str, tmp_path: Path) -> None:
    """When PostgreSQL refuses the commit after the new file was written, the file is put back to the stored values."""
    svc = Constructors(_settings(postgres_url, tmp_path), airflow_db=False)
    try:
        svc.create("c", "sample", {"epochs": 1}, owner="x")
        with svc.store.engine.begin() as conn:
            # A deferred constraint trigger: the UPDATE succeeds, the COMMIT fails.
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse_seven() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN IF NEW.values_json LIKE '%\"epochs\": 7%' THEN "
                    "RAISE EXCEPTION 'seven refused at commit'; END IF; RETURN NEW; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE CONSTRAINT TRIGGER refuse_seven AFTER UPDATE "
                    "ON mlwf_constructor_instances DEFERRABLE INITIALLY DEFERRED "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_seven()"
                )
            )
        with pytest.raises(StoreError, match="could not commit the change of instance 'c'"):
            svc.update("c", values={"epochs": 7})
        assert svc.store.get("c").values["epochs"] == 1
        assert_file_matches_store(svc, "c")
    finally:
        svc.store.engine.dispose()


ROUNDS = 50
OPS = ("create", "create", "update", "update", "enable", "disable", "delete", "sync")


def _hammer(settings: Settings, seed: int, rounds: int, ids: tuple[str, ...], done: Any) -> None:
    """Run ``rounds`` random operations on ``ids`` (expected errors ignored), counting successes in ``done``."""
    svc = Constructors(settings, airflow_db=False)
    rng = random.Random(seed)
    try:
        for _ in range(rounds):
            op, instance_id = rng.choice(OPS), rng.choice(ids)
            try:
                if op == "create":
                    svc.create(
                        instance_id, "sample", {"epochs": rng.randint(1, 9)}, owner=str(seed)
                    )
                elif op == "update":
                    svc.update(instance_id, values={"epochs": rng.randint(1, 9)})
                elif op in ("enable", "disable"):
                    svc.update(instance_id, enabled=op == "enable")
                elif op == "delete":
                    svc.delete(instance_id)
                else:
                    svc.sync()
                with done.get_lock():
                    done.value += 1
            except (InstanceExistsError, InstanceNotFoundError):
                pass  # exists / not found: the other workers got there first
    finally:
        svc.store.engine.dispose()


def _process_worker(
    settings: Settings, seed: int, rounds: int, ids: tuple[str, ...], done: Any
) -> None:
    threads = [
        Worker(f"w{seed}-{i}", lambda i=i: _hammer(settings, seed * 10 + i, rounds, ids, done))
        for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.finish()


def test_random_interleavings_keep_files_equal_to_the_store(store_url: str, tmp_path: Path) -> None:
    """Issue 10 item 5: after 2 processes x 2 threads of random create/update/enable/disable/delete/sync on three ids, every file matches the store."""
    settings = _settings(store_url, tmp_path)
    Constructors(settings, airflow_db=False).store.engine.dispose()  # migrate once up front
    ids = ("a", "b", "c")
    # fork: the children inherit the imported Airflow/SQLAlchemy modules, not a pool (each
    # worker makes its own engine), so starting them costs milliseconds.
    ctx = multiprocessing.get_context("fork")
    done = ctx.Value("i", 0)
    procs = [
        ctx.Process(target=_process_worker, args=(settings, s, ROUNDS, ids, done)) for s in (1, 2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    for p in procs:  # a hung worker must not outlive the test (and its database)
        if p.is_alive():
            p.kill()
            p.join()
    assert [p.exitcode for p in procs] == [0, 0], "a worker process failed (see its traceback)"
    # Not vacuous: a good share of the operations succeeded (the rest found the id taken/gone).
    assert done.value >= 4 * ROUNDS // 3, f"only {done.value} of {4 * ROUNDS} operations succeeded"
    svc = Constructors(settings, airflow_db=False)
    try:
        for instance_id in ids:
            assert_file_matches_store(svc, instance_id)
        assert list(svc.path("a").parent.glob(".tmp-*")) == []
    finally:
        svc.store.engine.dispose()


# -- issue 10 review: authorization and DAG id reservations under the lock -----------------------


def test_enable_authorizes_exactly_what_it_writes(
    service: Constructors, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 1: an enable whose authorization is held while a PATCH points the instance at prod_pipeline never ends enabled with values it did not authorize."""
    service.create("r", "related", {"target": "dev_pipeline"}, owner="x", enabled=False)
    authorized: list[dict[str, Any]] = []

    def refuse_prod(old: Any, new: Any, related: Any) -> None:
        if any(r.role == "uses" and r.dag_id.startswith("prod_") for r in related):
            raise PermissionError("prod_* may not be used")
        authorized.append(dict(new.values))

    pause = Pause("enabler")
    enabler = Worker(
        "enabler", lambda: service.update("r", enabled=True, authorize=pause.wrap(refuse_prod))
    )
    patcher = Worker(
        "patcher",
        lambda: service.update("r", values={"target": "prod_pipeline"}, enabled=False),
    )
    pause.race(enabler, patcher)
    stored = service.store.get("r")
    assert not (stored.enabled and stored.values["target"] == "prod_pipeline"), stored
    assert authorized and authorized[-1]["target"] == "dev_pipeline"
    assert_file_matches_store(service, "r")


def test_concurrent_creates_cannot_define_one_dag_id(
    service: Constructors, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 2: of two concurrent creates, `x` and `y` defining DAG `x`, exactly one succeeds and the other gets an error naming DAG 'x'."""
    pause = Pause("y")
    monkeypatch.setattr(files, "write_atomic", pause.wrap(files.write_atomic))
    errors: dict[str, BaseException] = {}

    def create(instance_id: str, constructor: str, values: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                service.create(instance_id, constructor, values, owner="x")
            except InstanceExistsError as err:
                errors[instance_id] = err

        return run

    y = Worker("y", create("y", "related", {"side": "x"}))
    x = Worker("x", create("x", "sample", {"epochs": 1}))
    pause.race(y, x)
    assert sorted(r.instance_id for r in service.store.list()) == ["y"]
    assert list(errors) == ["x"] and "'x'" in str(errors["x"])
    assert not service.path("x").exists()


def test_constructors_create_and_update_check_defined_dag_ids(service: Constructors) -> None:
    """Issue 10 item 2: Constructors.create and update (the CLI's path) refuse a DAG id another instance has or defines, naming the DAG, and store nothing."""
    service.create("y", "related", {"side": "x"}, owner="x")
    with pytest.raises(InstanceExistsError, match="'x'"):
        service.create("x", "sample", {"epochs": 1}, owner="x")
    service.create("z", "sample", {"epochs": 1}, owner="x")
    with pytest.raises(InstanceExistsError, match="'z'"):
        service.create("w", "related", {"side": "z"}, owner="x")
    service.create("v", "related", {}, owner="x")
    with pytest.raises(InstanceExistsError, match="'x'"):
        service.update("v", values={"side": "x"})
    assert [r.instance_id for r in service.store.list()] == ["v", "y", "z"]
    assert service.store.get("v").values["side"] == ""
    service.delete("y")  # its reservations go with it
    service.create("x", "sample", {"epochs": 1}, owner="x")


def test_ids_differing_in_case_are_distinct_instances_on_mariadb(
    mariadb_url: str, tmp_path: Path
) -> None:
    """Issue 10 item 3: on MariaDB a version 2 store with case-insensitive id columns migrates to case-sensitive ones: instance `t` does not answer for `T`, and `T` is a separate instance."""
    from mlwf_constructors import _store

    engine = sa.create_engine(mariadb_url)
    now = _store.datetime.now(_store.UTC)
    with engine.begin() as conn:
        _store.schema_version.create(conn)
        for version in (1, 2):
            _store.MIGRATIONS[version](conn, None)
            conn.execute(_store.schema_version.insert().values(version=version, applied_at=now))
        for table in ("mlwf_constructor_instances", "mlwf_constructor_locks"):
            conn.execute(
                sa.text(
                    f"ALTER TABLE {table} MODIFY instance_id VARCHAR(100) "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL"
                )
            )
        conn.execute(
            _store.instances.insert().values(
                instance_id="t",
                constructor="related",
                constructor_version="1.0.0",
                values_json=json.dumps(
                    {"target": "dev_pipeline", "side": "t_side", "explode": False, "hold": ""}
                ),
                owner="x",
                enabled=False,
                created_at=now,
                updated_at=now,
            )
        )
    engine.dispose()
    svc = Constructors(_settings(mariadb_url, tmp_path), airflow_db=False)
    try:
        assert svc.store.current_version() == 4
        with pytest.raises(InstanceNotFoundError):
            svc.store.get("T")
        with pytest.raises(InstanceNotFoundError):
            svc.update("T", enabled=True)
        with pytest.raises(InstanceNotFoundError):
            svc.delete("T")
        svc.create("T", "sample", {"epochs": 1}, owner="y")
        assert [r.instance_id for r in svc.store.list()] == ["T", "t"]
        assert svc.store.get("T").constructor == "sample"
        assert svc.store.get("t").constructor == "related"
        with pytest.raises(InstanceExistsError, match="'t_side'"):  # backfilled reservation
            svc.create("t_side", "sample", {"epochs": 1}, owner="y")
    finally:
        svc.store.engine.dispose()


def test_owner_groups_survive_the_version_4_migration(
    service: Constructors, store_url: str, tmp_path: Path
) -> None:
    """Issue 13: a version 3 store gains owner_groups (none for its instances); new instances record their creator's groups, and owned_dags names every DAG id they define."""
    store = service.store
    with store.engine.begin() as conn:  # back to version 3: no owner_groups column
        conn.execute(sa.text("ALTER TABLE mlwf_constructor_instances DROP COLUMN owner_groups"))
        conn.execute(sa.text("DELETE FROM mlwf_constructor_schema_version WHERE version = 4"))
    assert store.current_version() == 3
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO mlwf_constructor_instances (instance_id, constructor, "
                "constructor_version, values_json, owner, enabled, created_at, updated_at) "
                "VALUES ('old', 'sample', '2.1.0', '{}', 'x', :f, :t, :t)"
            ),
            {"f": False, "t": datetime.now(UTC)},
        )
        conn.execute(sa.text("INSERT INTO mlwf_constructor_dag_ids VALUES ('old', 'old')"))
    assert store.migrate() == 4
    assert store.get("old").owner_groups == () and store.owned_dags() == []
    service.create("new", "sample", {"epochs": 1}, owner="ann", owner_groups=["recsys", "ml", "ml"])
    related = service.create(
        "rel",
        "related",
        {"target": "dev_pipeline", "side": "rel_side", "explode": False, "hold": ""},
        owner="bo",
        owner_groups=["fraud"],
    )
    assert store.get("new").owner_groups == ("ml", "recsys")
    assert related.as_json()["owner_groups"] == ["fraud"]
    assert store.owned_dags() == [
        ("new", ("ml", "recsys")),
        ("rel", ("fraud",)),
        ("rel_side", ("fraud",)),
    ]
    service.update("new", values={"epochs": 2})  # an update keeps the owners
    assert store.get("new").owner_groups == ("ml", "recsys")
    service.delete("rel")
    assert store.owned_dags() == [("new", ("ml", "recsys"))]
