"""Experiments that report a learning curve, and tunings that stop the bad ones early (airflow dag file).

``CurveWorkflow`` stands for any pipeline whose training task reports per-step values: its
``train`` task sleeps ``step_seconds`` per step and reports ``quality * (step + 1) / steps`` with
``report_intermediate``, so a low ``quality`` gives a curve below the others at every step.
``EpochWorkflow`` is ``TrainEvaluateWorkflow`` with a trainer (``epoch_trainer.py``, run in a
child process) that reports its accuracy per epoch through ``report_progress``.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task
from mlwf_constructors import DagConstructor, Parameter
from mlwf_tuning import (
    Categorical,
    HyperparameterTuner,
    HyperparameterTuningSpec,
    MedianStopping,
    TrainEvaluateWorkflow,
    report_intermediate,
)

STEPS = 6
QUALITIES = [0.1, 0.15, 0.2, 0.25, 0.8, 0.85, 0.9, 0.95]


class CurveWorkflow(DagConstructor):
    """``train`` reports a curve of ``quality`` per step; ``workflow_result`` pushes ``{"score": quality}``."""

    name = "stopping_curve"
    version = "1.0.0"
    description = "A training task that reports a learning curve (integration test)."
    parameters = (
        Parameter("quality", float, default=1.0, minimum=0.0, maximum=1.0),
        Parameter("steps", int, default=STEPS, minimum=1),
        Parameter("step_seconds", float, default=0.5, minimum=0.0),
    )

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        """Build train → workflow_result; both read the run's params."""
        with DAG(
            dag_id,
            schedule=None,
            start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            catchup=False,
            params=params,
            max_active_runs=8,
        ) as dag:

            @task(task_id="train")
            def train(params: dict[str, Any] | None = None) -> float:
                """Report the curve step by step (stopped early when the tuning prunes the run)."""
                quality, steps = float(params["quality"]), int(params["steps"])
                for step in range(steps):
                    time.sleep(float(params["step_seconds"]))
                    report_intermediate(step, quality * (step + 1) / steps)
                return quality

            @task(task_id="workflow_result")
            def result(score: float) -> None:
                """Push the experiment's metrics (the tuner's contract)."""
                get_current_context()["ti"].xcom_push(key="workflow_result", value={"score": score})

            result(train())
        return dag


workflow = CurveWorkflow()
EXPERIMENTS = "stopping_experiments"
experiments = workflow.build(EXPERIMENTS, {})

# Grid order (seed 0): 0.85, 0.15, 0.95, 0.8, 0.9, 0.25, 0.2, 0.1; the worst ones run last, when
# at least two experiments have succeeded, so the rule has medians to compare them with.
spec = HyperparameterTuningSpec(
    hyperparameters={"quality": Categorical(QUALITIES)},
    metric="score",
    direction="maximize",
    method="grid",
    parallelism=2,
    seed=0,
    early_stopping=MedianStopping(min_experiments=2, warmup_steps=2),
)
tune_stopping = HyperparameterTuner(workflow, spec, instance_id=EXPERIMENTS).build_dag(
    "tune_stopping"
)


class EpochWorkflow(TrainEvaluateWorkflow):
    """``TrainEvaluateWorkflow`` with a trainer that reports its accuracy per epoch."""

    trainer = f"{Path(__file__).with_name('epoch_trainer.py')}:train"


epoch_workflow = EpochWorkflow()
EPOCH_EXPERIMENTS = "stopping_epoch_experiments"
epoch_experiments = epoch_workflow.build(EPOCH_EXPERIMENTS, {"dataset": "iris"})

# Grid order (seed 0): C = 0.1, 2.0, 1.0, 0.05; the last runs once two have succeeded.
epoch_spec = HyperparameterTuningSpec(
    hyperparameters={"C": Categorical([0.05, 0.1, 1.0, 2.0])},
    metric="accuracy",
    direction="maximize",
    method="grid",
    parallelism=2,
    seed=0,
    early_stopping=MedianStopping(min_experiments=2, warmup_steps=1),
)
tune_epochs = HyperparameterTuner(
    epoch_workflow, epoch_spec, instance_id=EPOCH_EXPERIMENTS
).build_dag("tune_epochs")
