"""Early stopping inside DAG experiments: the store's intermediate curves and ``report_intermediate``."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowSkipException
from conftest import store_url
from mlwf_tuning import (
    Categorical,
    ExperimentConflictError,
    ExperimentNotFoundError,
    ExperimentPrunedError,
    ExperimentRecord,
    ExperimentRun,
    ExperimentRunPrunedError,
    ExperimentState,
    HyperparameterTuningSpec,
    InMemoryExperimentStore,
    IntermediateStore,
    MedianStopping,
    SqlExperimentStore,
    TrainAndReportOperator,
    TrainEvaluateWorkflow,
    TuningError,
    report_intermediate,
)
from mlwf_tuning._contract import EXPERIMENT_CONF_KEY

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SPEC = HyperparameterTuningSpec(
    hyperparameters={"q": Categorical([0.1, 0.5, 0.9, 1.0])},
    metric="accuracy",
    direction="maximize",
    method="grid",
    parallelism=2,
    early_stopping=MedianStopping(min_experiments=2, warmup_steps=1),
)


def _store_of(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> IntermediateStore:
    if kind == "memory":
        return InMemoryExperimentStore()
    return SqlExperimentStore(store_url(request, kind, f"{tmp_path}/store.db"))


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb"])
def opened(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[IntermediateStore, str]]:
    """Each store and the id of a fresh tuning in it, with experiments 0-3 running."""
    s = _store_of(request.param, tmp_path, request)
    tid = f"tune/{uuid.uuid4().hex[:8]}"
    s.open_tuning(tid, SPEC.plan_json())
    _start(s, tid, [_running(i) for i in range(4)])
    yield s, tid
    if isinstance(s, SqlExperimentStore):
        s.engine.dispose()


def _running(index: int) -> ExperimentRecord:
    return ExperimentRecord(
        index, {"q": [0.1, 0.5, 0.9, 1.0][index]}, ExperimentState.RUNNING, started=T0
    )


def _succeeded(record: ExperimentRecord, value: float) -> ExperimentRecord:
    return record.evolve(
        state=ExperimentState.SUCCEEDED, metrics={"accuracy": value}, finished=T0, error=None
    )


def _run_of(tid: str, index: int) -> ExperimentRun:
    return ExperimentRun(f"exp{index:04d}__{tid.replace('/', '_')}", f"token-{index}")


def _start(store: IntermediateStore, tid: str, records: list[ExperimentRecord]) -> None:
    """Save ``records`` and record the run the tuner would have created for each."""
    store.save(tid, records)
    for record in records:
        store.assign_run(tid, record.index, _run_of(tid, record.index))


def _context(tid: str, index: int) -> dict[str, Any]:
    run = _run_of(tid, index)
    entry = {"tuning_id": tid, "index": index, "token": run.token}
    return {
        "dag_run": SimpleNamespace(run_id=run.run_id, conf={"q": 0.5, EXPERIMENT_CONF_KEY: entry})
    }


def _by_index(store: IntermediateStore, tid: str) -> dict[int, ExperimentRecord]:
    return {r.index: r for r in store.load(tid)}


# The store: append_intermediate


def test_appended_steps_form_the_curve_and_a_step_reported_again_is_replaced(
    opened: tuple[IntermediateStore, str],
) -> None:
    """Each step is one point of the curve; the same value again changes nothing, a new one replaces it."""
    store, tid = opened
    assert store.append_intermediate(tid, 1, 0, 0.5) == {0: 0.5}
    assert store.append_intermediate(tid, 1, 1, 0.6) == {0: 0.5, 1: 0.6}
    assert store.append_intermediate(tid, 1, 1, 0.6) == {0: 0.5, 1: 0.6}
    assert store.append_intermediate(tid, 1, 0, 0.55) == {0: 0.55, 1: 0.6}  # a retried attempt
    records = _by_index(store, tid)
    assert records[1].intermediate == {0: 0.55, 1: 0.6}
    assert records[0].intermediate == {}
    assert records[1].state == ExperimentState.RUNNING


def test_an_unknown_experiment_is_named(opened: tuple[IntermediateStore, str]) -> None:
    """Reporting for an experiment the store does not hold raises ExperimentNotFoundError naming tuning and index."""
    store, tid = opened
    with pytest.raises(ExperimentNotFoundError, match=rf"tuning '{tid}' has no experiment 9"):
        store.append_intermediate(tid, 9, 0, 0.5)
    assert all(not r.intermediate for r in store.load(tid))


def test_a_finished_experiment_takes_no_new_value(opened: tuple[IntermediateStore, str]) -> None:
    """After an experiment finished, a new value is refused (ExperimentConflictError); the same value again is a no-op."""
    store, tid = opened
    store.append_intermediate(tid, 2, 0, 0.9)
    store.save(tid, [_succeeded(_by_index(store, tid)[2], 0.9)])
    assert store.append_intermediate(tid, 2, 0, 0.9) == {0: 0.9}
    with pytest.raises(
        ExperimentConflictError, match=r"experiment 2 already finished as succeeded"
    ):
        store.append_intermediate(tid, 2, 1, 0.95)
    assert _by_index(store, tid)[2].intermediate == {0: 0.9}


def test_a_save_with_a_stale_curve_loses_no_reported_step(
    opened: tuple[IntermediateStore, str],
) -> None:
    """The tuner saving a record it loaded before the reports (empty curve) keeps every reported step."""
    store, tid = opened
    stale = _by_index(store, tid)[3]
    for step in range(3):
        store.append_intermediate(tid, 3, step, 0.1 * step)
    store.save(tid, [_succeeded(stale, 0.3)])
    record = _by_index(store, tid)[3]
    assert record.state == ExperimentState.SUCCEEDED
    assert record.intermediate == {0: 0.0, 1: 0.1, 2: 0.2}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_two_reporters_and_a_tuner_interleaved_lose_nothing(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two experiments reporting 100 steps each while the tuner saves records, each on its own engine, lose no write."""
    first = _store_of(kind, tmp_path, request)
    assert isinstance(first, SqlExperimentStore)
    # Each thread's store opens its own engine from the URL (with the store's SQLite busy
    # timeout: a bare create_engine waits 5 s for the lock, too short on a loaded machine).
    url = first.engine.url.render_as_string(hide_password=False)
    tid = f"race/{uuid.uuid4().hex[:8]}"
    first.open_tuning(tid, SPEC.plan_json())
    first.save(tid, [_running(i) for i in range(4)])
    stale = {r.index: r for r in first.load(tid)}
    steps = 100
    errors: list[BaseException] = []

    def reporter(index: int) -> None:
        store = SqlExperimentStore(url)
        try:
            for step in range(steps):
                store.append_intermediate(tid, index, step, index + step / 100)
        except BaseException as err:  # collected: a thread's exception would vanish
            errors.append(err)
        finally:
            store.engine.dispose()

    def tuner() -> None:
        store = SqlExperimentStore(url)
        try:
            for round_ in range(steps):
                # Re-save the reporters' records with the curves loaded before any report ...
                store.save(tid, [stale[0].evolve(started=T0.replace(second=round_ % 60))])
                store.save(tid, [stale[1].evolve(started=T0.replace(second=round_ % 60))])
            # ... and finish the two others: one transaction each, as the record step does.
            store.save(tid, [_succeeded(stale[2], 0.9)])
            store.save(tid, [_succeeded(stale[3], 0.8)])
        except BaseException as err:
            errors.append(err)
        finally:
            store.engine.dispose()

    threads = [threading.Thread(target=reporter, args=(i,)) for i in (0, 1)]
    threads.append(threading.Thread(target=tuner))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    records = {r.index: r for r in first.load(tid)}
    for index in (0, 1):
        assert records[index].intermediate == {s: index + s / 100 for s in range(steps)}
        assert records[index].state == ExperimentState.RUNNING
    assert records[2].state == records[3].state == ExperimentState.SUCCEEDED
    first.engine.dispose()


def test_the_intermediate_table_is_added_to_an_existing_store(tmp_path: Path) -> None:
    """A database made before the intermediate table existed gets it when opened; its records stay."""
    url = f"sqlite:///{tmp_path}/old.db"
    SqlExperimentStore(url).save("t", [_running(0)])
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE mlwf_tuning_intermediate"))
    store = SqlExperimentStore(engine)
    assert "mlwf_tuning_intermediate" in sa.inspect(engine).get_table_names()
    assert store.append_intermediate("t", 0, 0, 0.4) == {0: 0.4}
    assert store.load("t")[0].params == {"q": 0.1}


# report_intermediate


def _memory_store() -> tuple[InMemoryExperimentStore, str]:
    store = InMemoryExperimentStore()
    tid = "tune_dag/manual__1"
    store.open_tuning(tid, SPEC.plan_json())
    _start(store, tid, [_running(i) for i in range(4)])
    return store, tid


def _finish_two(store: InMemoryExperimentStore, tid: str) -> None:
    """Experiments 2 and 3 succeed with curves 0.6, 0.8, 0.9 and 0.7, 0.85, 0.95."""
    for index, curve in ((2, [0.6, 0.8, 0.9]), (3, [0.7, 0.85, 0.95])):
        for step, value in enumerate(curve):
            store.append_intermediate(tid, index, step, value)
        store.save(tid, [_succeeded(_by_index(store, tid)[index], curve[-1])])


def test_outside_a_tuning_reporting_is_a_no_op() -> None:
    """A run without the conf key, or code outside any Airflow task, reports nothing and opens no store."""
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # opening it would fail
    report_intermediate(
        0, 0.5, context={"dag_run": SimpleNamespace(conf={"q": 0.5})}, store=unreachable
    )
    report_intermediate(0, 0.5, context={"dag_run": SimpleNamespace(conf=None)}, store=unreachable)
    report_intermediate(0, 0.5, store=unreachable)  # no task context at all


def test_a_malformed_conf_key_is_an_error_naming_it() -> None:
    """A conf key mlwf_tuning of the wrong shape fails naming the key and the expected shape."""
    store, _ = _memory_store()
    context = {"dag_run": SimpleNamespace(conf={EXPERIMENT_CONF_KEY: {"tuning_id": "t"}})}
    with pytest.raises(TuningError, match=r"conf key 'mlwf_tuning' must be .*tuning_id.*index"):
        report_intermediate(0, 0.5, context=context, store=store)


def test_values_are_recorded_and_a_metrics_dict_gives_the_spec_metric() -> None:
    """A float is the spec metric's value; from a dict of metrics the spec's metric is taken, others ignored."""
    store, tid = _memory_store()
    report_intermediate(0, 0.5, context=_context(tid, 1), store=store)
    report_intermediate(1, {"accuracy": 0.6, "loss": 3.0}, context=_context(tid, 1), store=store)
    report_intermediate(2, {"loss": 2.0}, context=_context(tid, 1), store=store)  # no accuracy
    assert _by_index(store, tid)[1].intermediate == {0: 0.5, 1: 0.6}


def test_bad_steps_and_values_are_refused() -> None:
    """A negative step or a non-finite value raises ValueError naming it."""
    store, tid = _memory_store()
    with pytest.raises(ValueError, match="step must be an int >= 0; got -1"):
        report_intermediate(-1, 0.5, context=_context(tid, 1), store=store)
    with pytest.raises(ValueError, match="finite number; got nan at step 0"):
        report_intermediate(0, float("nan"), context=_context(tid, 1), store=store)


def test_a_value_below_the_median_prunes_the_experiment_and_skips_the_task() -> None:
    """Past the warm-up, with two finished experiments, a worse value saves the record pruned and raises a skip."""
    store, tid = _memory_store()
    _finish_two(store, tid)
    report_intermediate(0, 0.1, context=_context(tid, 0), store=store)  # step 0: warm-up
    with pytest.raises(ExperimentRunPrunedError) as info:
        report_intermediate(1, 0.3, context=_context(tid, 0), store=store)
    assert isinstance(info.value, ExperimentPrunedError)
    assert isinstance(info.value, AirflowSkipException)
    message = str(info.value)
    assert "stopped at step 1: value 0.3 is worse than the median 0.825" in message
    assert "maximize accuracy" in message
    record = _by_index(store, tid)[0]
    assert record.state == ExperimentState.PRUNED
    assert record.intermediate == {0: 0.1, 1: 0.3}
    assert record.error == message and record.finished is not None


def test_a_pruned_experiment_stays_pruned_when_it_reports_again() -> None:
    """A retried or parallel task of a pruned experiment is stopped at its next report, recording nothing."""
    store, tid = _memory_store()
    _finish_two(store, tid)
    with pytest.raises(ExperimentRunPrunedError):
        report_intermediate(1, 0.3, context=_context(tid, 0), store=store)
    with pytest.raises(ExperimentRunPrunedError, match="stopped at step 1"):
        report_intermediate(2, 0.99, context=_context(tid, 0), store=store)
    assert _by_index(store, tid)[0].intermediate == {1: 0.3}


def test_good_values_warmup_and_too_few_finished_experiments_never_stop() -> None:
    """At or above the median, during the warm-up, or with fewer finished experiments than required, a run goes on."""
    store, tid = _memory_store()
    report_intermediate(1, 0.0, context=_context(tid, 0), store=store)  # nothing finished yet
    _finish_two(store, tid)
    report_intermediate(0, 0.0, context=_context(tid, 1), store=store)  # warm-up step
    report_intermediate(1, 0.825, context=_context(tid, 1), store=store)  # the median itself
    report_intermediate(2, 0.99, context=_context(tid, 1), store=store)
    records = _by_index(store, tid)
    assert records[1].state == records[0].state == ExperimentState.RUNNING
    assert records[1].intermediate == {0: 0.0, 1: 0.825, 2: 0.99}


def test_without_a_rule_values_are_only_recorded() -> None:
    """A spec without early_stopping records the curve and never stops."""
    store = InMemoryExperimentStore()
    spec = SPEC.model_copy(update={"early_stopping": None})
    store.open_tuning("t", spec.plan_json())
    _start(store, "t", [_running(0), _succeeded(_running(1), 0.9).evolve(intermediate={0: 0.9})])
    report_intermediate(0, 0.0, context=_context("t", 0), store=store)
    assert _by_index(store, "t")[0].intermediate == {0: 0.0}


def test_reports_to_an_already_recorded_experiment_change_nothing() -> None:
    """A run re-run after the tuner recorded its experiment (succeeded) reports nothing."""
    store, tid = _memory_store()
    _finish_two(store, tid)
    report_intermediate(5, 0.0, context=_context(tid, 2), store=store)
    assert _by_index(store, tid)[2].intermediate == {0: 0.6, 1: 0.8, 2: 0.9}


def test_an_unknown_tuning_names_the_store() -> None:
    """A conf naming a tuning the store does not hold fails naming tuning and store."""
    store, _ = _memory_store()
    with pytest.raises(
        ExperimentNotFoundError, match=r"tuning 'other/run' .* is not in the experiment store"
    ):
        report_intermediate(0, 0.5, context=_context("other/run", 0), store=store)


def test_the_default_store_is_the_tuners(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a store argument, report_intermediate uses [mlwf_tuning] store_url, as the tuner does."""
    url = f"sqlite:///{airflow_home}/tuning.db"
    monkeypatch.setenv("AIRFLOW__MLWF_TUNING__STORE_URL", url)
    store = SqlExperimentStore(url)
    store.open_tuning("t", SPEC.plan_json())
    _start(store, "t", [_running(0)])
    report_intermediate(0, 0.4, context=_context("t", 0))
    assert store.load("t")[0].intermediate == {0: 0.4}


# TrainEvaluateWorkflow: a trainer's progress reaches the tuning

PROGRESS_TRAINER = """
import time
from mlwf_operators.trainers import report_progress
def train(params, data, out):
    for epoch in range(4):
        report_progress(epoch, {"accuracy": params["accuracy"], "loss": 1.0})
        time.sleep(0.2)
    open(out + "/model.txt", "w").write("m")
    return {"train_accuracy": params["accuracy"]}
"""


def _train_operator(tmp_path: Path, accuracy: float) -> TrainAndReportOperator:
    tmp_path.mkdir()
    trainer = tmp_path / "progress_trainer.py"
    trainer.write_text(PROGRESS_TRAINER)
    return TrainAndReportOperator(
        task_id="train",
        entry_point=str(trainer),
        data="x",
        hyperparameters={"accuracy": accuracy},
        artifact_location=(tmp_path / "artifacts").as_uri(),
        training_timeout=120,
    )


class _Ti:
    dag_id, run_id, task_id, try_number = "exp", "exp0000", "train", 1

    def xcom_push(self, key: str, value: object) -> None:
        """Accept the operator's XComs (not checked here)."""


def test_train_operator_reports_each_epoch_and_a_pruned_trainer_stops(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """TrainAndReportOperator records the trainer's per-epoch accuracy; a bad trainer is pruned mid-training."""
    url = f"sqlite:///{airflow_home}/tuning.db"
    monkeypatch.setenv("AIRFLOW__MLWF_TUNING__STORE_URL", url)
    store = SqlExperimentStore(url)
    store.open_tuning("t", SPEC.plan_json())
    _start(store, "t", [_running(i) for i in range(4)])
    for index in (2, 3):  # finished with accuracy 0.9 at every epoch
        for step in range(4):
            store.append_intermediate("t", index, step, 0.9)
        store.save("t", [_succeeded(_running(index), 0.9)])

    good = _train_operator(tmp_path / "good", 0.95)
    good.execute({"ti": _Ti(), "dag_run": _context("t", 0)["dag_run"]})  # type: ignore[typeddict-item]  # stubs of the keys execute and on_progress read
    bad = _train_operator(tmp_path / "bad", 0.2)
    with pytest.raises(ExperimentRunPrunedError, match="stopped at step 1"):
        bad.execute({"ti": _Ti(), "dag_run": _context("t", 1)["dag_run"]})  # type: ignore[typeddict-item]  # stubs of the keys execute and on_progress read
    records = {r.index: r for r in store.load("t")}
    assert records[0].intermediate == {s: 0.95 for s in range(4)}
    assert records[0].state == ExperimentState.RUNNING  # the tuner records it when the run ends
    assert records[1].state == ExperimentState.PRUNED
    assert records[1].intermediate == {0: 0.2, 1: 0.2}


def test_the_workflow_trains_with_its_trainer_through_the_reporting_operator() -> None:
    """TrainEvaluateWorkflow's train task is a TrainAndReportOperator running the class's trainer."""

    class EpochWorkflow(TrainEvaluateWorkflow):
        trainer = "my_pkg.epochs:train"

    dag = EpochWorkflow().build("epochs", {})
    train = dag.get_task("train")
    assert isinstance(train, TrainAndReportOperator)
    assert train.entry_point == "my_pkg.epochs:train"
    default = TrainEvaluateWorkflow().build("reference", {}).get_task("train")
    assert default.entry_point == "mlwf_operators.trainers.sklearn_reference:train"  # type: ignore[union-attr]  # a TrainAndReportOperator
