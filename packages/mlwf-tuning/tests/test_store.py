"""Experiment stores: durable, idempotent writes keyed by (tuning_id, index), in memory and on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import store_url
from mlwf_tuning import (
    ExperimentConflictError,
    ExperimentRecord,
    ExperimentState,
    ExperimentStore,
    InMemoryExperimentStore,
    SqlExperimentStore,
    TuningSpecMismatchError,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)


def _drop_tables(url: str) -> None:
    """Drop every table of a server database shared by the module, so the next test starts empty."""
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for a SQL store: a SQLite file, or the module's PostgreSQL / MariaDB database."""
    url = store_url(request, request.param, f"{tmp_path}/t.db")
    yield url
    if request.param != "sqlite":
        _drop_tables(url)


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExperimentStore]:
    """Each store implementation (the SQL one on every database), with tuning 't' opened."""
    if request.param == "memory":
        s: ExperimentStore = InMemoryExperimentStore()
    else:
        s = SqlExperimentStore(store_url(request, request.param, f"{tmp_path}/t.db"))
    s.open_tuning("t", '{"spec": 1}')
    yield s
    if isinstance(s, SqlExperimentStore):
        s.engine.dispose()
        if request.param != "sqlite":
            _drop_tables(str(s.engine.url.render_as_string(hide_password=False)))


def _done(index: int, loss: float) -> ExperimentRecord:
    return ExperimentRecord(
        index,
        {"x": index / 10, "k": "rbf", "n": index},
        ExperimentState.SUCCEEDED,
        metrics={"loss": loss, "acc": 0.5},
        intermediate={1: 2.0, 2: 1.5},
        started=T0,
        finished=T1,
    )


def test_records_round_trip_every_field(store: ExperimentStore) -> None:
    """A saved record loads back equal, timestamps, intermediate values and duration included."""
    records = [
        _done(1, 0.3),
        ExperimentRecord(0, {"x": 0.0, "k": "rbf", "n": 0}, ExperimentState.FAILED, error="E: x"),
    ]
    store.save("t", records)
    loaded = store.load("t")
    assert loaded == sorted(records, key=lambda r: r.index)
    assert loaded[1].duration_s == 300.0


def test_writing_a_finished_experiment_again_is_a_no_op(store: ExperimentStore) -> None:
    """Saving the same outcome twice (even with other timestamps) keeps one record, the first."""
    store.save("t", [_done(0, 0.3)])
    store.save("t", [_done(0, 0.3).evolve(finished=datetime(2027, 1, 1, tzinfo=UTC))])
    assert store.load("t") == [_done(0, 0.3)]


def test_a_finished_outcome_is_never_overwritten(store: ExperimentStore) -> None:
    """Changing a finished experiment's outcome, or demoting it to running, raises ExperimentConflictError naming it."""
    store.save("t", [_done(0, 0.3)])
    with pytest.raises(
        ExperimentConflictError, match="tuning 't' experiment 0 already finished as succeeded"
    ):
        store.save("t", [_done(0, 0.4)])
    with pytest.raises(ExperimentConflictError, match="experiment 0 already finished"):
        store.save("t", [_done(0, 0.3).evolve(state=ExperimentState.RUNNING)])
    assert store.load("t") == [_done(0, 0.3)]


def test_planned_params_cannot_change(store: ExperimentStore) -> None:
    """A planned experiment's hyperparameters are fixed: rewriting them raises ExperimentConflictError."""
    store.save("t", [ExperimentRecord(0, {"x": 1})])
    with pytest.raises(ExperimentConflictError, match=r"recorded with params \{'x': 1\}"):
        store.save("t", [ExperimentRecord(0, {"x": 2})])


def test_a_batch_with_a_conflict_writes_nothing(store: ExperimentStore) -> None:
    """A save whose batch holds one conflicting record leaves every record of the batch unwritten."""
    store.save("t", [_done(0, 0.3)])
    with pytest.raises(ExperimentConflictError):
        store.save("t", [ExperimentRecord(1, {"x": 1}), _done(0, 0.9)])
    assert [r.index for r in store.load("t")] == [0]


def test_unfinished_experiments_progress(store: ExperimentStore) -> None:
    """Planned → running → succeeded replaces the record each time."""
    planned = ExperimentRecord(0, {"x": 0.0, "k": "rbf", "n": 0})
    store.save("t", [planned])
    store.save("t", [planned.evolve(state=ExperimentState.RUNNING, started=T0)])
    assert store.load("t")[0].state == ExperimentState.RUNNING
    store.save("t", [_done(0, 0.1)])
    assert store.load("t") == [_done(0, 0.1)]


def test_reopening_with_another_spec_is_refused(store: ExperimentStore) -> None:
    """Opening an existing tuning id with a different spec raises TuningSpecMismatchError naming the id."""
    store.open_tuning("t", '{"spec": 1}')
    with pytest.raises(
        TuningSpecMismatchError, match="tuning 't' is already recorded with a different spec"
    ):
        store.open_tuning("t", '{"spec": 2}')


def test_tunings_are_kept_apart(store: ExperimentStore) -> None:
    """Experiments with the same index in two tunings are separate records."""
    store.open_tuning("u", "{}")
    store.save("t", [_done(0, 0.3)])
    store.save("u", [_done(0, 0.7)])
    assert store.load("t")[0].metrics["loss"] == 0.3
    assert store.load("u")[0].metrics["loss"] == 0.7


def test_sql_store_survives_reopening_and_prefixes_its_tables(sql_url: str) -> None:
    """A second SqlExperimentStore on the same database sees the records, in tables prefixed mlwf_tuning_."""
    first = SqlExperimentStore(sql_url)
    first.save("t", [_done(3, 0.2)])
    first.engine.dispose()
    again = SqlExperimentStore(sql_url)
    assert again.load("t") == [_done(3, 0.2)]
    assert set(sa.inspect(again.engine).get_table_names()) == {
        "mlwf_tuning_tunings",
        "mlwf_tuning_experiments",
        "mlwf_tuning_intermediate",
        "mlwf_tuning_experiment_runs",
    }
