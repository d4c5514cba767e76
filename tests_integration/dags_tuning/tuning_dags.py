"""Tuning DAGs over TrainEvaluateWorkflow for the integration test (airflow dag file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier
from mlwf_tuning import (
    Categorical,
    FloatRange,
    HyperparameterTuner,
    HyperparameterTuningSpec,
    TrainEvaluateWorkflow,
)


class FileNotifier(BaseNotifier):
    """An Airflow notifier that writes its templated text to a file (the test reads it)."""

    template_fields = ("text",)

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def notify(self, context: Any) -> None:
        """Write the rendered text to $AIRFLOW_HOME/tuning_report.txt."""
        path = Path(os.environ.get("AIRFLOW_HOME", ".")) / "tuning_report.txt"
        path.write_text(self.text, encoding="utf-8")


workflow = TrainEvaluateWorkflow()
EXPERIMENTS = "tuning_experiments"
experiments = workflow.build(EXPERIMENTS, {"dataset": "iris"})

random_spec = HyperparameterTuningSpec(
    hyperparameters={"C": FloatRange(0.001, 10.0, log=True)},
    metric="log_loss",
    method="random",
    n_experiments=4,
    parallelism=2,
    seed=7,
)
# The tuner's own experiment DAG (tune_random__experiments); the others share EXPERIMENTS.
tune_random = HyperparameterTuner(
    workflow,
    random_spec,
    base_conf={"dataset": "iris"},
    notifier=FileNotifier("best C {{ tuning_result.best_params.C }}\n{{ tuning_report }}"),
).build_dag("tune_random")

# C = 0.0 makes LogisticRegression refuse to train: one failed experiment out of four.
grid_spec = HyperparameterTuningSpec(
    hyperparameters={"C": Categorical([0.0, 0.01, 1.0, 100.0])},
    metric="accuracy",
    direction="maximize",
    method="grid",
    parallelism=2,
    max_failed_experiments=1,
)
tune_grid = HyperparameterTuner(workflow, grid_spec, instance_id=EXPERIMENTS).build_dag("tune_grid")

strict_spec = HyperparameterTuningSpec(
    hyperparameters={"C": Categorical([0.0, 1.0])},
    metric="accuracy",
    direction="maximize",
    method="grid",
    parallelism=2,
    max_failed_experiments=0,
)
tune_strict = HyperparameterTuner(workflow, strict_spec, instance_id=EXPERIMENTS).build_dag(
    "tune_strict"
)

# Bayesian (TPE) in two rounds of two, in one task (the default); the resume test clears this
# run mid-way.
tpe_spec = HyperparameterTuningSpec(
    hyperparameters={"C": FloatRange(0.001, 10.0, log=True)},
    metric="log_loss",
    method="tpe",
    n_experiments=4,
    parallelism=2,
    seed=3,
)
tune_tpe = HyperparameterTuner(workflow, tpe_spec, instance_id=EXPERIMENTS).build_dag("tune_tpe")

# Never unpaused by the test: its tuning must fail at once, naming it. Its rounds are spread
# over two tasks (round_0, report), so the multi-task layout runs here too.
paused_experiments = workflow.build("tuning_paused_experiments", {"dataset": "iris"})
tune_paused = HyperparameterTuner(
    workflow, random_spec, instance_id="tuning_paused_experiments", round_tasks=2
).build_dag("tune_paused")

# Gaussian-process Bayesian search in two rounds of two: 2 random startup experiments (a third
# of the budget, at least 2), then one modelled round conditioned on them.
gp_spec = HyperparameterTuningSpec(
    hyperparameters={"C": FloatRange(0.001, 10.0, log=True)},
    metric="log_loss",
    method="gp",
    n_experiments=4,
    parallelism=2,
    seed=5,
)
tune_gp = HyperparameterTuner(workflow, gp_spec, instance_id=EXPERIMENTS).build_dag("tune_gp")
