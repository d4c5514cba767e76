"""Example DAG constructors shipped in the DAG bundle (``[mlwf_constructors] bundle_modules``).

``mlwf up`` registers this module, so its constructors are listed at
``GET /mlwf/constructors/constructors`` and instances can be created with
``POST /mlwf/constructors/instances`` or ``mlwf constructors create``. The file defines no DAG
itself: each instance becomes a generated file under ``mlwf_constructed/``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Literal

from airflow.sdk import DAG, Param, get_current_context, task
from mlwf_constructors import DagConstructor, Parameter


class TrainEvaluate(DagConstructor):
    """Train a model on a dataset for some epochs, then evaluate it against a threshold."""

    name = "train_evaluate"
    version = "1.0.0"
    description = "Train a toy model (gradient descent on a quadratic) and evaluate its loss."
    parameters = (
        Parameter(
            "dataset", str, default="iris", pattern=r"[a-z0-9_]{1,40}", description="dataset name"
        ),
        Parameter(
            "learning_rate",
            float,
            default=0.1,
            minimum=0.0001,
            maximum=1.0,
            description="gradient step size",
        ),
        Parameter("epochs", int, default=5, minimum=1, maximum=1000, description="training epochs"),
        Parameter("optimizer", Literal["sgd", "momentum"], default="sgd"),
        Parameter("max_loss", float, default=1.0, minimum=0.0, description="evaluation threshold"),
        Parameter("tags", list[str], default=[], max_length=10, description="free-form labels"),
        Parameter("schedule", Literal["none", "@daily", "@weekly"], default="none"),
    )

    def build_dag(self, dag_id: str, values: Mapping[str, Any], params: dict[str, Param]) -> DAG:
        """Build train → evaluate; the tasks read run-time params, so overrides apply per run."""
        schedule = None if values["schedule"] == "none" else values["schedule"]
        with DAG(
            dag_id,
            schedule=schedule,
            start_date=datetime.datetime(2026, 1, 1),
            catchup=False,
            params=params,
            tags=["mlwf-constructors", self.name],
            description=f"{self.name} on {values['dataset']}",
        ) as dag:

            @task
            def train() -> float:
                p = get_current_context()["params"]
                weight, velocity = 3.0, 0.0
                for _ in range(int(p["epochs"])):
                    gradient = 2 * weight
                    velocity = (0.9 * velocity if p["optimizer"] == "momentum" else 0.0) + gradient
                    weight -= float(p["learning_rate"]) * velocity
                print(f"trained on {p['dataset']!r} tags={p['tags']!r}")
                return weight * weight

            @task
            def evaluate(loss: float) -> bool:
                limit = float(get_current_context()["params"]["max_loss"])
                if loss > limit:
                    raise ValueError(f"loss {loss:.4f} exceeds max_loss {limit}")
                return True

            evaluate(train())
        return dag
