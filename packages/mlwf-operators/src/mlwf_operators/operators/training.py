"""Train a model: run a user's training entry point in a child process and store its artifact."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context
from mlwf_types import typed

from mlwf_operators.operators._ml_paths import default_artifact_root, safe_name

__all__ = ["TrainModelOperator"]


@typed(
    inputs={
        "entry_point": str,
        "hyperparameters": dict[str, Any],
        "data": str,
        "artifact_location": str | None,
        "training_timeout": float,
    },
    outputs={"return_value": str, "metrics": dict[str, float]},
)
class TrainModelOperator(BaseOperator):
    """Train a model in a separate process; return its artifact URI and push its metrics.

    ``entry_point`` follows the trainer contract (``"pkg.module:function"``, ``"pkg.module"`` or a
    ``.py`` path): it is called as ``train(hyperparameters, data, output_dir)``, writes the model
    into ``output_dir`` and returns ``dict[str, float]``. The model is stored under
    ``artifact_location`` (default ``$AIRFLOW_HOME/mlwf/artifacts``; any URI whose scheme has an
    artifact store) at ``<dag_id>/<run_id>/<task_id>-<try>``. XComs: ``return_value`` the model
    URI, ``metrics`` the metrics. Each ``report_progress(step, metrics)`` of the trainer calls
    :meth:`on_progress` while it trains.
    """

    template_fields = ("entry_point", "hyperparameters", "data", "artifact_location")
    ui_color = "#d7ecff"

    def __init__(
        self,
        *,
        entry_point: str,
        data: str,
        hyperparameters: dict[str, Any] | None = None,
        artifact_location: str | None = None,
        training_timeout: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if training_timeout <= 0:
            raise ValueError(
                f"task {self.task_id!r}: training_timeout must be positive, got {training_timeout}"
            )
        self.entry_point = entry_point
        self.data = data
        self.hyperparameters = hyperparameters or {}
        self.artifact_location = artifact_location
        self.training_timeout = float(training_timeout)

    def execute(self, context: Context) -> str:
        """Run the trainer, store the model, push ``metrics``; return the model URI."""
        from mlwf_operators.artifacts import artifact_store_for
        from mlwf_operators.trainers import run_trainer

        ti = context["ti"]
        root = (self.artifact_location or default_artifact_root()).rstrip("/")
        uri = "/".join(
            [
                root,
                safe_name(ti.dag_id),
                safe_name(ti.run_id),
                f"{safe_name(ti.task_id)}-{ti.try_number}",
            ]
        )
        store = artifact_store_for(uri)
        self.log.info(
            "training %s on %s with %s", self.entry_point, self.data, self.hyperparameters
        )
        with tempfile.TemporaryDirectory(prefix="mlwf-model-") as scratch:
            output_dir = Path(scratch) / "model"
            metrics = run_trainer(
                self.entry_point,
                self.hyperparameters,
                self.data,
                output_dir,
                timeout=self.training_timeout,
                log_line=lambda line: self._trainer_line(line, context),
            )
            stored = store.put_dir(output_dir, uri)
        self.log.info("model stored at %s; metrics %s", stored, metrics)
        ti.xcom_push(key="metrics", value=metrics)
        return stored

    def on_progress(self, step: int, metrics: dict[str, float], context: Context) -> None:
        """Handle metrics the trainer reported at ``step``; this one does nothing (the line is logged).

        Subclasses forward them (to a tracker, an early-stopping rule). An exception raised here
        kills the trainer's process tree and ends the task as that exception would anywhere in
        ``execute`` (an ``AirflowSkipException`` skips it).
        """

    def _trainer_line(self, line: str, context: Context) -> None:
        from mlwf_operators.trainers import parse_progress

        self.log.info("trainer | %s", line)
        progress = parse_progress(line)
        if progress is not None:
            self.on_progress(*progress, context)
