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


def _tuning(method: str) -> DAG:
    """16 experiments, 4 at a time, of the no-op; the tuner builds its own experiment DAG
    (``tuning_overhead_<method>__experiments``, max_active_runs 4)."""
    spec = HyperparameterTuningSpec(
        hyperparameters={"x": FloatRange(-1.0, 1.0)},
        metric="loss",
        method=method,
        n_experiments=16,
        parallelism=4,
    )
    return HyperparameterTuner(NoOp(), spec).build_dag(f"tuning_overhead_{method}")


# Random is planned in one round; TPE and GP plan a batch of 4 per round, each on every result
# so far, all in the one task `report` (the default; round_tasks=4 would make them 4 tasks).
tuning_random = _tuning("random")
tuning_tpe = _tuning("tpe")
tuning_gp = _tuning("gp")
