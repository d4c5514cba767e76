"""The airflow DAG files of the tuning_overhead benchmark: a no-op constructor and a tuning over it."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task
from mlwf_constructors import DagConstructor, Parameter
from mlwf_tuning import FloatRange, HyperparameterTuner, HyperparameterTuningSpec


class NoOp(DagConstructor):
    """One task that pushes ``workflow_result = {"loss": x}``: the cheapest possible experiment."""

    name = "noop"
    version = "1.0.0"
    parameters = (Parameter("x", float, default=0.5),)

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        """Build the single-task DAG."""
        with DAG(
            dag_id,
            schedule=None,
            start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            params=params,
            max_active_runs=32,
        ) as dag:

            @task(task_id="workflow_result")
            def result() -> None:
                x = float(get_current_context()["params"]["x"])
                get_current_context()["ti"].xcom_push(key="workflow_result", value={"loss": x * x})

            result()
        return dag


noop = NoOp().build("noop_experiment", {})
# The floor: 16 runs of the same no-op queued at once behind max_active_runs 4, no tuner at all.
paced = NoOp().build("noop_paced", {})
paced.max_active_runs = 4
spec = HyperparameterTuningSpec(
    hyperparameters={"x": FloatRange(-1.0, 1.0)},
    metric="loss",
    method="random",
    n_experiments=16,
    parallelism=4,
)
# The tuner builds its own experiment DAG (tuning_overhead__experiments, max_active_runs 4).
tuning = HyperparameterTuner(NoOp(), spec).build_dag("tuning_overhead")

# One wave only: with the 16-experiment run it separates the fixed cost from the per-wave cost.
one_wave = HyperparameterTuner(NoOp(), spec.model_copy(update={"n_experiments": 4})).build_dag(
    "tuning_overhead_one_wave"
)

# The same 16 experiments over an existing instance (instance_id): the tuner paces itself, 4 per
# round (reported next to the default, not part of the ratio).
shared = HyperparameterTuner(NoOp(), spec, instance_id="noop_experiment").build_dag(
    "tuning_overhead_shared"
)
