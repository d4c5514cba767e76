"""Issue 10 item 1: a tuning's size is bounded ([mlwf_tuning] max_experiments) and a large tuning stays a small DAG."""

from __future__ import annotations

import time
import tracemalloc
from types import SimpleNamespace
from typing import Any

import pytest
from mlwf_constructors import ParameterValidationError
from mlwf_tuning import (
    Categorical,
    ExperimentState,
    FloatRange,
    HyperparameterTuner,
    HyperparameterTuningSpec,
    InMemoryExperimentStore,
    IntRange,
    TrainEvaluateWorkflow,
    TuningConstructor,
)
from mlwf_tuning._round_operator import TuningRoundOperator
from mlwf_tuning._rounds import plan_round
from pydantic import ValidationError

MAX_ROUND_TASKS = 16  # the documented cap (mlwf_tuning._tuner.MAX_ROUND_TASKS)

#: The 132-byte instance of the issue: a TPE tuning of a billion experiments.
HOSTILE = {
    "constructor": "train_evaluate_workflow",
    "spec": '{"hyperparameters": {"C": {"kind": "float", "low": 0.01, "high": 10}}, '
    '"metric": "accuracy", "method": "tpe", "n_experiments": 1000000000}',
}


def test_a_billion_experiments_spec_is_refused_fast_naming_the_field_and_the_limit() -> None:
    """Issue 10 item 1: the 132-byte TPE spec of 10**9 experiments is refused in well under a second, naming n_experiments and max_experiments."""
    started = time.perf_counter()
    with pytest.raises(ParameterValidationError) as caught:
        TuningConstructor.validate(HOSTILE)
    with pytest.raises(ParameterValidationError):
        TuningConstructor().build("t", HOSTILE)
    elapsed = time.perf_counter() - started
    assert caught.value.parameter == "spec"
    assert "n_experiments=1000000000 exceeds the limit of 10000" in str(caught.value)
    assert "[mlwf_tuning] max_experiments" in str(caught.value)
    assert elapsed < 0.5, f"refusing took {elapsed:.2f} s"


def test_a_grid_of_ten_billion_points_is_refused_without_listing_it() -> None:
    """Issue 10 item 1: a grid over IntRange(0, 10**10) is refused by counting its points, allocating almost nothing."""
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError, match="the grid has 10000000001 points, more than"):
            HyperparameterTuningSpec(
                hyperparameters={"n": IntRange(0, 10**10)}, metric="m", method="grid"
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, f"validating the grid allocated {peak} bytes"


def test_a_grid_with_few_experiments_but_a_huge_grid_is_refused() -> None:
    """Issue 10 item 1: n_experiments does not shrink the grid Optuna would enumerate, so the grid size itself is bounded."""
    with pytest.raises(ValidationError, match="grid has 1000001 points"):
        HyperparameterTuningSpec(
            hyperparameters={"x": FloatRange(0, 1, step=1e-6)},
            metric="m",
            method="grid",
            n_experiments=5,
        )


def test_a_subnormal_float_step_is_a_validation_error() -> None:
    """Issue 10 item 1: a FloatRange step so small that the point count overflows is a clear ValidationError."""
    with pytest.raises(ValidationError, match="step=5e-324 is too small"):
        FloatRange(0, 1e300, step=5e-324)


def test_max_experiments_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 1: [mlwf_tuning] max_experiments sets the bound for every method and for grids."""
    monkeypatch.setenv("AIRFLOW__MLWF_TUNING__MAX_EXPERIMENTS", "5")
    with pytest.raises(ValidationError, match="n_experiments=6 exceeds the limit of 5"):
        HyperparameterTuningSpec(
            hyperparameters={"x": FloatRange(0, 1)}, metric="m", method="random", n_experiments=6
        )
    with pytest.raises(ValidationError, match="grid has 6 points, more than the limit of 5"):
        HyperparameterTuningSpec(
            hyperparameters={"x": Categorical([1, 2, 3, 4, 5, 6])}, metric="m", method="grid"
        )
    assert HyperparameterTuningSpec(
        hyperparameters={"x": FloatRange(0, 1)}, metric="m", n_experiments=5
    )


def test_a_tuning_of_max_experiments_is_a_dag_of_at_most_the_cap_of_tasks() -> None:
    """Issue 10 item 1: 10,000 one-at-a-time TPE experiments build, quickly, a chain of at most MAX_ROUND_TASKS tasks covering every round once."""
    spec = HyperparameterTuningSpec(
        hyperparameters={"C": FloatRange(0.01, 10, log=True)},
        metric="accuracy",
        n_experiments=10_000,
    )
    started = time.perf_counter()
    tuner = HyperparameterTuner(
        TrainEvaluateWorkflow(), spec, instance_id="pipeline", round_tasks=MAX_ROUND_TASKS
    )
    dag = tuner.build_dag("tune_big")
    elapsed = time.perf_counter() - started
    assert tuner.rounds() == 10_000
    assert len(dag.task_ids) == MAX_ROUND_TASKS
    assert elapsed < 2.0, f"building took {elapsed:.2f} s"
    ranges = [dag.get_task(t)._rounds for t in (*(f"round_{i}" for i in range(15)), "report")]  # type: ignore[attr-defined]  # TuningRoundOperator
    covered = [index for r in ranges for index in r]
    assert covered == list(range(10_000))


def test_a_small_tuning_keeps_one_task_per_round() -> None:
    """Issue 10 item 1: with round_tasks at the cap, a tuning of fewer rounds has a task per round."""
    spec = HyperparameterTuningSpec(
        hyperparameters={"C": FloatRange(0.01, 10, log=True)},
        metric="m",
        n_experiments=6,
        parallelism=2,
    )
    dag = HyperparameterTuner(
        TrainEvaluateWorkflow(), spec, instance_id="p", round_tasks=MAX_ROUND_TASKS
    ).build_dag("t")
    assert [dag.get_task(t)._rounds for t in ("round_0", "round_1", "report")] == [  # type: ignore[attr-defined]  # TuningRoundOperator
        range(0, 1),
        range(1, 2),
        range(2, 3),
    ]


def test_a_round_already_done_plans_nothing_when_its_task_runs_again() -> None:
    """Issue 10 item 1: plan_round(upto=...) plans no experiment past its round, so a re-run task never takes a later round's batch."""
    spec = HyperparameterTuningSpec(
        hyperparameters={"C": FloatRange(0.01, 10, log=True)},
        metric="m",
        n_experiments=6,
        parallelism=2,
    )
    store = InMemoryExperimentStore()
    store.open_tuning("t", spec.plan_json())
    first = plan_round(store, "t", spec, limit=2, upto=2)
    assert [r.index for r in first] == [0, 1]
    store.save("t", [r.evolve(state=ExperimentState.SUCCEEDED, metrics={"m": 1.0}) for r in first])
    assert plan_round(store, "t", spec, limit=2, upto=2) == []
    assert [r.index for r in plan_round(store, "t", spec, limit=2, upto=4)] == [2, 3]


def test_a_round_task_runs_each_of_its_rounds_in_order_then_finishes() -> None:
    """Issue 10 item 1: a round task with several rounds runs them one after the other, then its finish step."""
    calls: list[Any] = []
    task = TuningRoundOperator(
        task_id="report",
        rounds=range(3, 6),
        step=lambda index, context: calls.append(index),  # type: ignore[func-returns-value]  # nothing to wait on
        finish=lambda context: calls.append("report") or "done",
    )
    context: Any = {"ti": SimpleNamespace()}
    assert task.execute(context) == "done"
    assert calls == [3, 4, 5, "report"]
    calls.clear()
    assert task.execute_complete(context, event={"ended": 1}, next_round=5) == "done"
    assert calls == [5, "report"]


def test_a_failed_round_of_the_report_task_still_reports_then_fails_with_the_round_error() -> None:
    """A round failing in the one task that also reports (the default layout) gets the report of what
    is recorded (XCom, notifier), as a separate report task after a failed round did; the round's
    error fails the task, also when the report fails too. A round task without the report only fails."""

    class StoreDown(RuntimeError):
        pass

    calls: list[Any] = []

    def step(index: int, context: Any) -> None:
        calls.append(index)
        if index == 1:
            raise StoreDown("the store is unreachable")

    def report(context: Any) -> str:
        calls.append("report")
        return "done"

    task = TuningRoundOperator(task_id="report", rounds=range(3), step=step, finish=report)
    context: Any = {"ti": SimpleNamespace()}
    with pytest.raises(StoreDown, match="unreachable"):
        task.execute(context)
    assert calls == [0, 1, "report"]

    def failing_report(context: Any) -> str:
        calls.append("report")
        raise RuntimeError("no experiment succeeded")

    calls.clear()
    task = TuningRoundOperator(task_id="report", rounds=range(3), step=step, finish=failing_report)
    with pytest.raises(StoreDown):
        task.execute(context)
    assert calls == [0, 1, "report"]
    calls.clear()
    middle = TuningRoundOperator(task_id="round_0", rounds=range(3), step=step)
    with pytest.raises(StoreDown):
        middle.execute(context)
    assert calls == [0, 1]
