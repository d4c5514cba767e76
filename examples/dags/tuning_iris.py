"""Example airflow DAG file: tune a logistic regression on iris with the mlwf-tuning tuner.

Two DAGs: ``tuning_iris`` (Bayesian search, 8 experiments, 2 at a time) and the experiment DAG the
tuner builds for it, ``tuning_iris__experiments`` (a ``TrainEvaluateWorkflow`` instance: train →
validate → XCom ``workflow_result``; unpaused on creation). Unpause and trigger ``tuning_iris``;
the ``report`` task logs the table and pushes XCom ``tuning_result`` with the best parameters.
"""

from __future__ import annotations

from mlwf_tuning import (
    Categorical,
    FloatRange,
    HyperparameterTuner,
    HyperparameterTuningSpec,
    TrainEvaluateWorkflow,
)

workflow = TrainEvaluateWorkflow()

spec = HyperparameterTuningSpec(
    hyperparameters={
        "C": FloatRange(0.001, 100.0, log=True),
        "max_iter": Categorical([50, 200, 1000]),
    },
    metric="log_loss",
    direction="minimize",
    method="tpe",
    n_experiments=8,
    parallelism=2,
    max_failed_experiments=1,
    seed=0,
)
tuning_iris = HyperparameterTuner(workflow, spec, base_conf={"dataset": "iris"}).build_dag(
    "tuning_iris"
)
