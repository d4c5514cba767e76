"""Issue 10 items 4 and 13: reports come only from the run the tuner created, and a stuck experiment never holds a tuning forever."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.api.datamodels._generated import DagResponse
from airflow.sdk.exceptions import ErrorType
from airflow.sdk.execution_time import task_runner
from airflow.sdk.execution_time.comms import (
    DagRunResult,
    DRCount,
    ErrorResponse,
    GetDagRun,
    GetDRCount,
    OKResponse,
    TriggerDagRun,
)
from conftest import store_url
from mlwf_tuning import (
    Categorical,
    ExperimentRecord,
    ExperimentRun,
    ExperimentState,
    ForeignExperimentRunError,
    HyperparameterTuner,
    HyperparameterTuningSpec,
    InMemoryExperimentStore,
    IntermediateStore,
    MedianStopping,
    SqlExperimentStore,
    TrainEvaluateWorkflow,
    report_intermediate,
)
from mlwf_tuning._contract import EXPERIMENT_CONF_KEY
from mlwf_tuning._settings import experiment_timeout_s
from mlwf_tuning._steps import TuningSteps
from mlwf_tuning._trigger import ExperimentRunsTrigger

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SPEC = HyperparameterTuningSpec(
    hyperparameters={"C": Categorical([0.1, 1.0, 10.0])},
    metric="accuracy",
    direction="maximize",
    method="grid",
    parallelism=3,
    early_stopping=MedianStopping(min_experiments=1, warmup_steps=0),
)


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IntermediateStore]:
    """An experiment store on each backend."""
    if request.param == "memory":
        yield InMemoryExperimentStore()
        return
    url = store_url(request, request.param, f"{tmp_path}/runs.db")
    sql = SqlExperimentStore(url)
    yield sql
    sql.engine.dispose()


def _context(tid: str, index: int, run_id: str, token: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"tuning_id": tid, "index": index}
    if token is not None:
        entry["token"] = token
    return {"dag_run": SimpleNamespace(run_id=run_id, conf={EXPERIMENT_CONF_KEY: entry})}


def _tuning(store: IntermediateStore) -> tuple[str, ExperimentRun]:
    """Open a tuning whose experiment 1 runs (run recorded) and experiment 0 succeeded at 0.9."""
    tid = f"tune/{uuid.uuid4().hex[:8]}"
    store.open_tuning(tid, SPEC.plan_json())
    running = [
        ExperimentRecord(i, {"C": [0.1, 1.0][i]}, ExperimentState.RUNNING, started=T0)
        for i in (0, 1)
    ]
    store.save(tid, running)
    run = store.assign_run(tid, 1, ExperimentRun("exp0001__tune__r__ab12cd34", "s3cret-token"))
    store.append_intermediate(tid, 0, 0, 0.9)
    store.save(
        tid,
        [
            running[0].evolve(
                state=ExperimentState.SUCCEEDED, metrics={"accuracy": 0.9}, finished=T0
            )
        ],
    )
    return tid, run


@pytest.mark.parametrize(
    ("run_id", "token"),
    [
        ("manual__forged", None),
        ("manual__forged", "guessed"),
        ("manual__forged", "s3cret-token"),
        ("exp0001__tune__r__ab12cd34", "guessed"),
        ("exp0001__tune__r__ab12cd34", None),
        (
            "exp0001__tune__r__ab12cd34",
            "s\u00e9cret-t\u00f6ken",
        ),  # compare_digest refuses non-ASCII str
        ("exp0001__tune__r__ab12cd34", 12345),
    ],
)
def test_a_forged_report_writes_nothing_and_prunes_nothing(
    store: IntermediateStore, run_id: str, token: Any
) -> None:
    """Issue 10 item 4: a run whose conf claims an experiment but whose run id or token is not the tuner's is refused, and the experiment's record is untouched."""
    tid, _ = _tuning(store)
    with pytest.raises(ForeignExperimentRunError, match="not the run the tuner created"):
        report_intermediate(0, 0.01, context=_context(tid, 1, run_id, token), store=store)
    record = {r.index: r for r in store.load(tid)}[1]
    assert record.state == ExperimentState.RUNNING  # not pruned by the worse value
    assert record.intermediate == {}


def test_the_tuner_s_own_run_reports_and_is_pruned(store: IntermediateStore) -> None:
    """Issue 10 item 4: the run the tuner created, with its token, reports as before (here: pruned by the median rule)."""
    tid, run = _tuning(store)
    with pytest.raises(Exception, match="stopped at step 0"):
        report_intermediate(0, 0.01, context=_context(tid, 1, run.run_id, run.token), store=store)
    record = {r.index: r for r in store.load(tid)}[1]
    assert record.state == ExperimentState.PRUNED
    assert record.intermediate == {0: 0.01}


def test_a_run_is_recorded_once_per_experiment(store: IntermediateStore) -> None:
    """Issue 10 item 4: the first recorded run of an experiment stays its run; a later attempt gets the recorded one back."""
    tid, run = _tuning(store)
    assert store.assign_run(tid, 1, ExperimentRun("other", "other-token")) == run
    assert store.experiment_run(tid, 1) == run
    assert store.experiment_run(tid, 2) is None


class _Airflow:
    """What a tuning task sees of Airflow: the Task SDK's messages (real message classes) and ``ti`` calls, over in-memory runs."""

    def __init__(self, tuning_dag: str, experiments: str) -> None:
        self.experiments = experiments
        self.dags = {
            d: DagResponse(
                dag_id=d,
                is_paused=False,
                bundle_name="dags-folder",
                bundle_version=None,
                relative_fileloc="tune.py",
                owners="airflow",
                tags=[],
                next_dagrun=None,
            )
            for d in (tuning_dag, experiments)
        }
        self.runs: dict[str, tuple[str, dict[str, Any]]] = {}  # run id -> (state, conf)
        self.dr_count = 0
        self.dag_id, self.run_id = tuning_dag, "manual__r"

    # SUPERVISOR_COMMS
    def send(self, msg: Any) -> Any:
        if isinstance(msg, TriggerDagRun):
            if msg.run_id in self.runs:
                return ErrorResponse(error=ErrorType.DAGRUN_ALREADY_EXISTS)
            self.runs[msg.run_id] = ("queued", dict(msg.conf or {}))
            return OKResponse(ok=True)
        if isinstance(msg, GetDagRun):
            state, conf = self.runs[msg.run_id]
            return DagRunResult(
                dag_id=msg.dag_id,
                run_id=msg.run_id,
                logical_date=None,
                data_interval_start=None,
                data_interval_end=None,
                run_after=T0,
                start_date=T0,
                end_date=None,
                run_type="manual",
                state=state,
                conf=conf,
                consumed_asset_events=[],
                partition_key=None,
            )
        if isinstance(msg, GetDRCount):
            return DRCount(count=self.dr_count)
        raise AssertionError(f"unexpected message {msg!r}")

    # ti
    def get_dag(self, dag_id: str) -> DagResponse:
        return self.dags[dag_id]

    def get_dagrun_state(self, dag_id: str, run_id: str) -> str:
        return self.runs[run_id][0]

    def get_dr_count(self, dag_id: str, run_ids: list[str], states: Any = None) -> int:
        return sum(1 for r in run_ids if r in self.runs)

    def get_task_states(self, **_: Any) -> dict[str, Any]:
        return {}

    def xcom_push(self, key: str, value: Any) -> None:
        """Accept the round's XCom."""


@pytest.fixture
def airflow(monkeypatch: pytest.MonkeyPatch) -> _Airflow:
    """The task's view of Airflow, installed as the Task SDK's supervisor channel."""
    fake = _Airflow("tune", "tune__experiments")
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", fake, raising=False)
    return fake


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlExperimentStore]:
    """A SQL experiment store on each real database."""
    url = store_url(request, request.param, f"{tmp_path}/tuner.db")
    sql = SqlExperimentStore(url)
    yield sql
    sql.engine.dispose()


def _steps(tuner: HyperparameterTuner) -> TuningSteps:
    assert tuner.steps is not None, "build_dag sets the steps"
    return tuner.steps


def _tuner(store: SqlExperimentStore) -> HyperparameterTuner:
    tuner = HyperparameterTuner(TrainEvaluateWorkflow(), SPEC, store=store)
    tuner.build_dag("tune")
    return tuner


def test_the_tuner_creates_runs_with_unguessable_ids_and_tokens(
    airflow: _Airflow, sql_store: SqlExperimentStore
) -> None:
    """Issue 10 item 4: each experiment run gets a random run id suffix and a secret token in its conf, both recorded in the store."""
    tuner = _tuner(sql_store)
    context: Any = {"ti": airflow, "dag_run": SimpleNamespace(start_date=T0)}
    uuid_run = f"manual__{uuid.uuid4().hex[:6]}"
    airflow.run_id = uuid_run
    trigger = _steps(tuner).round(0, context, report_task=True)
    assert trigger is not None and len(trigger.run_ids) == 3
    tid = f"tune/{uuid_run}"
    for index in range(3):
        run = sql_store.experiment_run(tid, index)
        assert run is not None and run.run_id in trigger.run_ids
        assert run.run_id.startswith(f"exp{index:04d}__tune__{uuid_run}__")
        assert len(run.token) >= 32
        assert airflow.runs[run.run_id][1][EXPERIMENT_CONF_KEY]["token"] == run.token


def test_a_run_pre_created_under_the_expected_id_is_not_adopted(
    airflow: _Airflow, sql_store: SqlExperimentStore
) -> None:
    """Issue 10 item 4: a run already under an experiment's run id whose conf lacks the tuner's token fails that experiment clearly instead of being adopted."""
    tuner = _tuner(sql_store)
    airflow.run_id = f"manual__{uuid.uuid4().hex[:6]}"
    tid = f"tune/{airflow.run_id}"
    sql_store.open_tuning(tid, SPEC.plan_json())
    # The id the tuner will use is known (e.g. from a crash before its trigger): someone takes it.
    run = sql_store.assign_run(tid, 0, ExperimentRun(f"exp0000__tune__{airflow.run_id}__x", "tok"))
    airflow.runs[run.run_id] = (
        "success",
        {"C": 0.1, EXPERIMENT_CONF_KEY: {"tuning_id": tid, "index": 0}},
    )
    context: Any = {"ti": airflow, "dag_run": SimpleNamespace(start_date=T0)}
    trigger = _steps(tuner).round(0, context, report_task=True)
    assert trigger is not None and run.run_id not in trigger.run_ids
    record = {r.index: r for r in sql_store.load(tid)}[0]
    assert record.state == ExperimentState.FAILED
    assert "was not created by this tuning" in (record.error or "")
    # The tuner's own run under its recorded id (its token in the conf) is adopted on a resume.
    own = sql_store.experiment_run(tid, 1)
    assert own is not None and own.run_id in trigger.run_ids
    assert _steps(tuner).runs.foreign(own) is None


def test_a_round_whose_runs_stop_ending_resumes_and_fails_them(
    airflow: _Airflow, sql_store: SqlExperimentStore
) -> None:
    """Issue 10 item 13: with no run ending for experiment_timeout_s the trigger resumes the task, which records the stuck experiments as failed and goes on."""
    spec = SPEC.model_copy(update={"experiment_timeout_s": 0.6})
    tuner = HyperparameterTuner(TrainEvaluateWorkflow(), spec, store=sql_store)
    dag = tuner.build_dag("tune")
    airflow.run_id = f"manual__{uuid.uuid4().hex[:6]}"
    context: Any = {"ti": airflow, "dag_run": SimpleNamespace(start_date=T0)}
    trigger = _steps(tuner).round(0, context, report_task=True)
    assert trigger is not None and trigger.stall_timeout == 0.6
    airflow.dr_count = 1  # one run ended, the two others never do

    async def first_event() -> Any:
        async for event in ExperimentRunsTrigger(*trigger.serialize()[1].values()).run():
            return event.payload
        return None

    payload = asyncio.run(asyncio.wait_for(first_event(), timeout=10))
    assert payload == {"stalled": True, "run_ids": trigger.run_ids, "timeout": 0.6}
    task = dag.get_task("report")
    task._finish = lambda context: "reported"  # type: ignore[attr-defined]  # the report reads XComs of real runs
    assert task.execute_complete(context, event=payload, next_round=1) == "reported"  # type: ignore[attr-defined]  # TuningRoundOperator
    records = sql_store.load(f"tune/{airflow.run_id}")
    assert [r.state for r in records] == [ExperimentState.FAILED] * 3
    assert all("experiment_timeout_s" in (r.error or "") for r in records)


def test_the_default_experiment_timeout_is_a_day_and_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 10 item 13: without a spec setting the stall timeout is [mlwf_tuning] experiment_timeout_s, a day by default."""
    tuner = HyperparameterTuner(TrainEvaluateWorkflow(), SPEC, store=InMemoryExperimentStore())
    monkeypatch.delenv("AIRFLOW__MLWF_TUNING__EXPERIMENT_TIMEOUT_S", raising=False)
    assert experiment_timeout_s(tuner.spec) == 86_400
    monkeypatch.setenv("AIRFLOW__MLWF_TUNING__EXPERIMENT_TIMEOUT_S", "120")
    assert experiment_timeout_s(tuner.spec) == 120
