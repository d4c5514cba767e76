"""The tuning DAG: its shape, its checks against the constructor, and its round bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mlwf_constructors import ParameterValidationError
from mlwf_tuning import (
    Categorical,
    ExperimentRecord,
    ExperimentState,
    FloatRange,
    HyperparameterTuner,
    HyperparameterTuningSpec,
    InMemoryExperimentStore,
    IntRange,
    TrainEvaluateWorkflow,
    TuningConstructor,
    TuningDefinitionError,
)
from mlwf_tuning._rounds import (
    Outcome,
    experiment_run_id,
    finish_record,
    plan_round,
    summarize,
)
from mlwf_tuning._tuner import MAX_ROUND_TASKS
from mlwf_tuning._workflow import trainer_params
from mlwf_types import check_dag

GRID = HyperparameterTuningSpec(
    hyperparameters={"C": Categorical([0.1, 1.0, 10.0])},
    metric="accuracy",
    direction="maximize",
    method="grid",
    parallelism=2,
)
TPE = HyperparameterTuningSpec(
    hyperparameters={"C": FloatRange(0.01, 10, log=True)},
    metric="log_loss",
    method="tpe",
    n_experiments=5,
    parallelism=2,
)


def _finish(store: InMemoryExperimentStore, tid: str, records: list[ExperimentRecord]) -> None:
    store.save(
        tid,
        [
            finish_record(r, Outcome(True, {"accuracy": 0.9, "log_loss": r.index}), "accuracy")
            for r in records
        ],
    )


def test_hyperparameter_not_declared_by_the_constructor_is_refused() -> None:
    """A hyperparameter the constructor does not declare fails when the tuner is built, naming it."""
    spec = HyperparameterTuningSpec(
        hyperparameters={"gamma": FloatRange(0.1, 1)}, metric="accuracy", n_experiments=2
    )
    with pytest.raises(TuningDefinitionError, match="'gamma' is not a parameter of constructor"):
        HyperparameterTuner(TrainEvaluateWorkflow(), spec, instance_id="x")


def test_range_outside_the_parameter_constraints_is_refused() -> None:
    """An integer range reaching below the parameter's minimum names the value and the parameter."""
    spec = HyperparameterTuningSpec(
        hyperparameters={"n_estimators": IntRange(0, 10)}, metric="accuracy", n_experiments=2
    )
    with pytest.raises(TuningDefinitionError, match=r"'n_estimators'.*can take 0.*>= 1"):
        HyperparameterTuner(TrainEvaluateWorkflow(), spec, instance_id="x")


def test_invalid_base_conf_is_refused() -> None:
    """A base conf value the constructor refuses fails when the tuner is built."""
    with pytest.raises(TuningDefinitionError, match=r"base_conf is invalid.*dataset"):
        HyperparameterTuner(
            TrainEvaluateWorkflow(), GRID, instance_id="x", base_conf={"dataset": "mnist"}
        )


def test_own_experiment_dag_paces_a_grid_in_one_round() -> None:
    """Without instance_id, a grid is one round over the tuner's own DAG, max_active_runs = parallelism."""
    tuner = HyperparameterTuner(TrainEvaluateWorkflow(), GRID, base_conf={"dataset": "iris"})
    dag = tuner.build_dag("t")
    assert dag.task_ids == ["report"]  # the single round also reports
    experiments = tuner.experiment_dag
    assert experiments is not None and experiments.dag_id == "t__experiments"
    assert tuner.experiment_dag_id == "t__experiments"
    assert experiments.max_active_runs == 2
    assert experiments.is_paused_upon_creation is False
    assert "mlwf-tuning-experiments" in experiments.tags
    assert experiments.params["dataset"] == "iris"
    assert check_dag(experiments) == []


def test_own_experiment_dag_keeps_a_lower_max_active_runs_of_the_pipeline() -> None:
    """A pipeline that allows fewer concurrent runs than the parallelism keeps its own limit."""

    class OneAtATime(TrainEvaluateWorkflow):
        def build_dag(self, dag_id: str, values: Any, params: Any) -> Any:
            dag = super().build_dag(dag_id, values, params)
            dag.max_active_runs = 1
            return dag

    tuner = HyperparameterTuner(OneAtATime(), GRID)
    tuner.build_dag("t")
    assert tuner.experiment_dag is not None and tuner.experiment_dag.max_active_runs == 1


def test_shared_instance_hands_out_parallelism_experiments_per_round() -> None:
    """Over an existing instance, a grid of 3 two at a time takes two rounds, in one task, and builds no DAG."""
    tuner = HyperparameterTuner(TrainEvaluateWorkflow(), GRID, instance_id="exp")
    dag = tuner.build_dag("t")
    assert tuner.rounds() == 2
    assert dag.task_ids == ["report"]
    assert dag.get_task("report")._rounds == range(2)  # type: ignore[attr-defined]  # TuningRoundOperator
    assert tuner.experiment_dag is None and tuner.experiment_dag_id == "exp"


def test_rounds_spread_over_round_tasks_chain_to_the_report() -> None:
    """With round_tasks=2 the two rounds are two chained tasks; the report runs after a failed round."""
    tuner = HyperparameterTuner(TrainEvaluateWorkflow(), GRID, instance_id="exp", round_tasks=2)
    dag = tuner.build_dag("t")
    assert sorted(dag.task_ids) == ["report", "round_0"]
    assert dag.get_task("report").upstream_task_ids == {"round_0"}
    assert dag.get_task("report").trigger_rule == "all_done"


@pytest.mark.parametrize("bad", [0, MAX_ROUND_TASKS + 1, -1, True, 2.0, "2"])
def test_round_tasks_out_of_range_is_refused_naming_it(bad: Any) -> None:
    """round_tasks must be an int from 1 to MAX_ROUND_TASKS; anything else is refused, naming it."""
    with pytest.raises(TuningDefinitionError, match="round_tasks must be"):
        HyperparameterTuner(TrainEvaluateWorkflow(), TPE, round_tasks=bad)


def test_bayesian_dag_runs_every_round_in_one_task_by_default() -> None:
    """Five TPE experiments two at a time are three rounds of the one task, which also reports."""
    tuner = HyperparameterTuner(TrainEvaluateWorkflow(), TPE)
    dag = tuner.build_dag("t")
    assert dag.task_ids == ["report"]
    report = dag.get_task("report")
    assert report._rounds == range(3)  # type: ignore[attr-defined]  # TuningRoundOperator
    assert report._warm_imports == ("optuna",)  # type: ignore[attr-defined]  # TuningRoundOperator


def test_gp_tasks_import_scikit_learn_ahead_of_planning() -> None:
    """A GP tuning's task imports the GP sampler (scikit-learn) in its warm-up thread, not only Optuna."""
    spec = TPE.model_copy(update={"method": "gp"})
    report = HyperparameterTuner(TrainEvaluateWorkflow(), spec).build_dag("t").get_task("report")
    assert report._warm_imports[:2] == ("optuna", "mlwf_tuning._gp")  # type: ignore[attr-defined]  # TuningRoundOperator
    assert "sklearn.gaussian_process" in report._warm_imports  # type: ignore[attr-defined]


def test_bayesian_dag_has_one_task_per_round_when_asked() -> None:
    """Five TPE experiments two at a time over round_tasks=16 are three chained tasks."""
    dag = HyperparameterTuner(TrainEvaluateWorkflow(), TPE, round_tasks=16).build_dag("t")
    assert set(dag.task_ids) == {"round_0", "round_1", "report"}  # the third round reports
    assert dag.get_task("round_1").upstream_task_ids == {"round_0"}
    assert dag.get_task("report").upstream_task_ids == {"round_1"}
    assert dag.get_task("round_1").trigger_rule == "all_success"


def test_poke_interval_and_instance_id_are_checked() -> None:
    """A poke interval outside 0.2..600 s or an empty instance id is refused when built."""
    with pytest.raises(TuningDefinitionError, match="poke_interval must be between"):
        HyperparameterTuner(TrainEvaluateWorkflow(), GRID, poke_interval=0.1)
    with pytest.raises(TuningDefinitionError, match="instance_id must be a DAG id"):
        HyperparameterTuner(TrainEvaluateWorkflow(), GRID, instance_id="")
    with pytest.raises(TuningDefinitionError, match="wait_in_task_s must be between"):
        HyperparameterTuner(TrainEvaluateWorkflow(), GRID, wait_in_task_s=-1)


def test_round_limit_hands_out_at_most_that_many_of_an_upfront_plan() -> None:
    """With a limit, a grid round hands out the first experiments; the next round the rest."""
    store, tid = InMemoryExperimentStore(), "t/r"
    store.open_tuning(tid, GRID.plan_json())
    first = plan_round(store, tid, GRID, limit=2)
    assert [r.index for r in first] == [0, 1]
    _finish(store, tid, first)
    second = plan_round(store, tid, GRID, limit=2)
    assert [r.index for r in second] == [2]


def test_train_evaluate_workflow_is_type_checked_clean() -> None:
    """The workflow's XCom edges pass mlwf-types and it ends in the workflow_result task."""
    dag = TrainEvaluateWorkflow().build("wf", {"model": "random_forest"})
    assert check_dag(dag) == []
    assert dag.get_task("workflow_result").upstream_task_ids == {"train"}


def test_trainer_params_pass_only_the_model_s_own_hyperparameters() -> None:
    """Random forests get trees and depth (0 means unlimited); logistic regression gets C."""
    params = {"model": "random_forest", "C": 3.0, "n_estimators": 7, "max_depth": 0}
    assert trainer_params(params) == {
        "model": "random_forest",
        "n_estimators": 7,
        "max_depth": None,
    }
    assert trainer_params({"C": 0.5}) == {
        "model": "logistic_regression",
        "C": 0.5,
        "max_iter": 1000,
    }


def test_upfront_round_hands_out_unfinished_experiments_again_and_never_finished_ones() -> None:
    """A re-planned grid round returns the same unfinished experiments and nothing once all finished."""
    store, tid = InMemoryExperimentStore(), "t/r"
    store.open_tuning(tid, GRID.plan_json())
    first = plan_round(store, tid, GRID)
    assert [r.index for r in first] == [0, 1, 2]
    assert {r.state for r in store.load(tid)} == {ExperimentState.RUNNING}
    _finish(store, tid, first[:1])
    again = plan_round(store, tid, GRID)
    assert [(r.index, r.params) for r in again] == [(r.index, r.params) for r in first[1:]]
    _finish(store, tid, again)
    assert plan_round(store, tid, GRID) == []
    assert len(store.load(tid)) == 3


def test_bayesian_rounds_plan_parallelism_at_a_time_up_to_the_budget() -> None:
    """TPE rounds plan 2, 2 and 1 experiments, then nothing."""
    store, tid = InMemoryExperimentStore(), "t/r"
    store.open_tuning(tid, TPE.plan_json())
    sizes = []
    while batch := plan_round(store, tid, TPE):
        sizes.append(len(batch))
        _finish(store, tid, batch)
    assert sizes == [2, 2, 1]


def test_round_after_the_time_budget_is_empty() -> None:
    """Once the time budget since the tuning run started is used up, no round is planned."""
    spec = GRID.model_copy(update={"time_budget_s": 60.0})
    store, tid = InMemoryExperimentStore(), "t/r"
    store.open_tuning(tid, spec.plan_json())
    now = datetime.now(UTC)
    assert plan_round(store, tid, spec, started_at=now - timedelta(seconds=61), now=now) == []
    assert summarize(store, tid, spec).stopped_reason is not None


def test_success_without_the_metric_is_a_failed_experiment() -> None:
    """A run that succeeds but pushes metrics without the spec's metric is recorded as failed, saying why."""
    record = ExperimentRecord(0, {"C": 1.0}, state=ExperimentState.RUNNING)
    done = finish_record(record, Outcome(True, {"f1": 0.5}), "accuracy")
    assert done.state == ExperimentState.FAILED
    assert "lacks 'accuracy'" in (done.error or "")


def test_experiment_run_id_names_the_index_and_is_a_valid_run_id() -> None:
    """The run id starts with the zero-padded index and keeps only characters Airflow accepts."""
    run_id = experiment_run_id("tune", "manual__2026-11-25T12:00:00+00:00", 3)
    assert run_id == "exp0003__tune__manual__2026-11-25T12:00:00+00:00"
    replaced = experiment_run_id("tune", "manual x", 3)
    assert replaced.startswith("exp0003__tune__manual_x_")  # plus a hash: "manual_x" differs


def test_tuning_constructor_builds_the_tuner_s_dag_from_json_values() -> None:
    """A tuning instance over the registered TrainEvaluateWorkflow is the tuner's DAG with params."""
    dag = TuningConstructor().build(
        "tune_iris",
        {
            "constructor": "train_evaluate_workflow",
            "instance_id": "iris_experiments",
            "spec": TPE.model_dump_json(),
            "base_conf": '{"dataset": "iris"}',
        },
    )
    assert dag.task_ids == ["report"]  # every round in one task
    own = TuningConstructor().build(
        "tune_own", {"constructor": "train_evaluate_workflow", "spec": GRID.model_dump_json()}
    )
    assert own.task_ids == ["report"]  # its own paced experiment DAG: one round
    assert dag.params["constructor"] == "train_evaluate_workflow"


def test_tuning_constructor_names_a_bad_spec_or_an_unknown_constructor() -> None:
    """An invalid spec JSON names the 'spec' parameter; an unregistered constructor is named."""
    values = {"constructor": "train_evaluate_workflow", "instance_id": "x", "spec": "{}"}
    with pytest.raises(ParameterValidationError, match="parameter 'spec': not a valid tuning spec"):
        TuningConstructor().build("t", values)
    values.update(constructor="nope", spec=GRID.model_dump_json())
    with pytest.raises(ParameterValidationError, match="'nope' is not a registered constructor"):
        TuningConstructor().build("t", values)


def test_default_store_is_a_file_in_airflow_home_on_a_single_host_executor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Without store_url, LocalExecutor tunings record into $AIRFLOW_HOME/mlwf_tuning.db, never the metadata DB."""
    from mlwf_tuning._settings import default_store_url

    monkeypatch.delenv("AIRFLOW__MLWF_TUNING__STORE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")
    assert default_store_url() == f"sqlite:///{tmp_path.resolve()}/mlwf_tuning.db"
    monkeypatch.setenv("AIRFLOW__MLWF_TUNING__STORE_URL", "postgresql://db/tuning")
    assert default_store_url() == "postgresql://db/tuning"


def test_default_store_on_a_multi_host_executor_names_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With Celery and no store_url, the store is refused with the setting to set, not silently split per host."""
    from mlwf_tuning import TuningError
    from mlwf_tuning._settings import default_store_url

    monkeypatch.delenv("AIRFLOW__MLWF_TUNING__STORE_URL", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor,CeleryExecutor")
    with pytest.raises(TuningError, match=r"set \[mlwf_tuning\] store_url .*CeleryExecutor"):
        default_store_url()


def test_warm_import_imports_in_order_and_stops_quietly_at_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The warm-up thread imports the method's modules in order; a failure ends it without raising
    (the plan's own import reports the problem, with its context)."""
    from mlwf_tuning import _round_operator

    imported: list[str] = []

    def import_module(name: str) -> None:
        imported.append(name)
        if name == "broken":
            raise ImportError("no module named 'broken'")

    monkeypatch.setattr(_round_operator.importlib, "import_module", import_module)
    _round_operator._warm_import(("optuna", "broken", "sklearn.gaussian_process"))
    assert imported == ["optuna", "broken"]
