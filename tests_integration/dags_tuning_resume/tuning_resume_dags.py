"""A Bayesian tuning over a slow toy experiment, for the kill-and-resume test (airflow dag file).

The experiment DAG (``tune_resume__experiments``, built by the tuner) follows the experiment contract of mlwf-tuning
(docs/mlwf-tuning/design.md): its task ``workflow_result`` sleeps a few seconds, so that a
scheduler killed mid-tuning kills a running experiment task, then pushes XCom
``workflow_result`` = ``{"loss": (x - 0.3) ** 2}``. The tuning uses the default experiment store
(no ``[mlwf_tuning] store_url``): with LocalExecutor, ``$AIRFLOW_HOME/mlwf_tuning.db``.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task
from mlwf_constructors import DagConstructor, Parameter
from mlwf_tuning import FloatRange, HyperparameterTuner, HyperparameterTuningSpec

TUNING = "tune_resume"
EXPERIMENTS = f"{TUNING}__experiments"  # the tuner's own experiment DAG
N_EXPERIMENTS = 6
PARALLELISM = 2


class SlowQuadratic(DagConstructor):
    """One task that sleeps ``sleep_s`` seconds, then reports ``loss = (x - 0.3) ** 2``."""

    name = "slow_quadratic"
    version = "1.0.0"
    description = "A toy experiment: sleep, then report (x - 0.3)^2 as workflow_result."
    parameters = (
        Parameter("x", float, default=0.5, minimum=0.0, maximum=1.0, description="the input"),
        Parameter("sleep_s", float, default=5.0, minimum=0.0, description="seconds of 'work'"),
    )

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        """Build the one-task experiment DAG; the task reads the run's params."""
        with DAG(
            dag_id,
            schedule=None,
            start_date=datetime.datetime(2026, 1, 1, tzinfo=UTC),
            catchup=False,
            params=params,
            max_active_runs=2 * PARALLELISM,
        ) as dag:

            @task(task_id="workflow_result")
            def work() -> None:
                """Sleep, then push the experiment's workflow_result."""
                context = get_current_context()
                params = context["params"]
                time.sleep(float(params["sleep_s"]))
                loss = (float(params["x"]) - 0.3) ** 2
                context["ti"].xcom_push(key="workflow_result", value={"loss": loss})

            work()
        return dag


constructor = SlowQuadratic()

spec = HyperparameterTuningSpec(
    hyperparameters={"x": FloatRange(0.0, 1.0)},
    metric="loss",
    method="tpe",
    n_experiments=N_EXPERIMENTS,
    parallelism=PARALLELISM,
    seed=11,
)
tune_resume = HyperparameterTuner(constructor, spec).build_dag(TUNING)
