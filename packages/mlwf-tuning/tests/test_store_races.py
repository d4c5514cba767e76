"""Issue 10 item 13: the SQL experiment store under concurrent writers (real threads, real PostgreSQL and SQLite) and run ids that never collide."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import store_url
from mlwf_tuning import (
    Categorical,
    ExperimentConflictError,
    ExperimentRecord,
    ExperimentState,
    HyperparameterTuningSpec,
    SqlExperimentStore,
)
from mlwf_tuning._rounds import experiment_run_id

MAX_RUN_ID_LENGTH = 250  # Airflow's limit

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SPEC = HyperparameterTuningSpec(
    hyperparameters={"q": Categorical([1, 2])}, metric="m", method="grid"
).plan_json()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on each real database."""
    return store_url(request, request.param, f"{tmp_path}/races.db")


def _slow_store(url: str, table: str, delay: float) -> SqlExperimentStore:
    """A store of its own (own engine) that pauses ``delay`` s after each read of ``table``: widens the read-then-write window."""
    store = SqlExperimentStore(url)

    def pause(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and f"{table} " in f"{statement} ":
            time.sleep(delay)

    sa.event.listen(store.engine, "after_cursor_execute", pause)
    return store


def _race(*jobs: Any) -> list[BaseException | None]:
    """Run ``jobs`` in real threads started together; return each one's exception (or None)."""
    errors: list[BaseException | None] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        barrier.wait()
        try:
            jobs[i]()
        except BaseException as err:  # collected: a thread's exception would vanish
            errors[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_a_save_racing_a_finishing_save_never_overwrites_the_outcome(url: str) -> None:
    """Issue 10 item 13: a stale save that read before another finished the experiment waits for it, then is refused; the outcome stays."""
    tid = f"race/{uuid.uuid4().hex[:8]}"
    setup = SqlExperimentStore(url)
    setup.open_tuning(tid, SPEC)
    planned = ExperimentRecord(0, {"q": 1})
    setup.save(tid, [planned])
    finisher = _slow_store(url, "mlwf_tuning_experiments", 0.2)
    stale = _slow_store(url, "mlwf_tuning_experiments", 0.8)
    succeeded = planned.evolve(
        state=ExperimentState.SUCCEEDED, metrics={"m": 1.0}, started=T0, finished=T0
    )
    running = planned.evolve(state=ExperimentState.RUNNING, started=T0)
    errors = _race(
        lambda: finisher.save(tid, [succeeded]),
        lambda: (time.sleep(0.05), stale.save(tid, [running])),
    )
    assert errors[0] is None
    assert errors[1] is None or isinstance(errors[1], ExperimentConflictError), repr(errors[1])
    assert setup.load(tid)[0].state == ExperimentState.SUCCEEDED
    for store in (setup, finisher, stale):
        store.engine.dispose()


def test_two_openers_of_one_tuning_both_succeed(url: str) -> None:
    """Issue 10 item 13: two tasks opening the same new tuning at once both succeed (no IntegrityError, no lock error)."""
    tid = f"open/{uuid.uuid4().hex[:8]}"
    stores = [_slow_store(url, "mlwf_tuning_tunings", 0.4) for _ in range(2)]
    errors = _race(*(lambda s=s: s.open_tuning(tid, SPEC) for s in stores))
    assert errors == [None, None]
    assert stores[0].tuning_spec(tid) == SPEC
    for store in stores:
        store.engine.dispose()


def test_a_sqlite_writer_waits_more_than_five_seconds_for_the_lock(tmp_path: Path) -> None:
    """Issue 10 item 13: SQLite's busy timeout is 30 s (was 5 s): a save waits out a 6 s write lock instead of failing."""
    path = tmp_path / "busy.db"
    store = SqlExperimentStore(f"sqlite:///{path}")
    store.open_tuning("t", SPEC)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(6.0, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    try:
        store.save("t", [ExperimentRecord(0, {"q": 1})])
    finally:
        release.join()
        holder.close()
    assert time.monotonic() - started >= 5.5
    assert [r.index for r in store.load("t")] == [0]
    store.engine.dispose()


def test_the_sqlite_busy_timeout_is_configurable(tmp_path: Path) -> None:
    """Issue 10 item 13: SqlExperimentStore(url, sqlite_timeout_s=...) sets how long a writer waits."""
    path = tmp_path / "short.db"
    store = SqlExperimentStore(f"sqlite:///{path}", sqlite_timeout_s=0.5)
    store.open_tuning("t", SPEC)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            store.save("t", [ExperimentRecord(0, {"q": 1})])
    finally:
        holder.execute("COMMIT")
        holder.close()
    store.engine.dispose()


def test_run_ids_cut_to_250_characters_stay_distinct() -> None:
    """Issue 10 item 13: two tuning runs whose ids differ only past the cut get distinct run ids of at most 250 characters."""
    long = "manual__" + "x" * 300
    first = experiment_run_id("tune", long + "a", 7)
    second = experiment_run_id("tune", long + "b", 7)
    assert first != second
    assert len(first) == len(second) == MAX_RUN_ID_LENGTH
    assert first.startswith("exp0007__tune__manual__xxx")
    assert experiment_run_id("t", "a b", 1) != experiment_run_id("t", "a_b", 1)


def test_tuning_ids_of_long_dag_and_run_ids_fit_the_store_and_stay_distinct(url: str) -> None:
    """A tuning DAG id and a manual run id of 250 characters each give tuning ids the store accepts (PostgreSQL enforces the column's 250), distinct when they differ past the cut."""
    from mlwf_tuning._rounds import tuning_id_of

    dag_id = "d" * 250
    first = tuning_id_of(dag_id, "manual__" + "x" * 242)
    second = tuning_id_of(dag_id, "manual__" + "x" * 241 + "y")
    assert first != second
    assert len(first) == len(second) == 250
    assert tuning_id_of("tune", "r1") == "tune/r1"  # short ids are unchanged: stored tunings resume
    store = SqlExperimentStore(url)
    for tid in (first, second):
        store.open_tuning(tid, SPEC)
        store.save(tid, [ExperimentRecord(0, {"q": 1})])
        assert [r.index for r in store.load(tid)] == [0]
    store.engine.dispose()
