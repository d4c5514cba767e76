"""Operator that records a model version, with its lineage, in an MLflow tracking server/registry."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from mlwf_types import typed

from mlwf_operators.hooks._errors import require_text

# ``MlflowHook.default_conn_name``, spelled out: the hook module (a frozen dataclass, the hook
# class, its HTTP helpers) is imported when the task runs, not each time a DAG file using this
# operator is parsed. A unit test keeps the two equal.
_DEFAULT_MLFLOW_CONN_ID = "mlwf_mlflow_default"


@typed(
    inputs={
        "model_name": str,
        "model_uri": str,
        "model_params": dict[str, Any],
        "metrics": dict[str, float],
        "tags": dict[str, str],
        "experiment_name": str | None,
    },
    outputs={"return_value": str, "mlflow_run_id": str},
)
class RecordModelVersionOperator(BaseOperator):
    """Record a model version with params, metrics and Airflow lineage; return the version number.

    Creates an MLflow run (``model_params`` as MLflow params, ``metrics``, tags ``airflow.dag_id``/``airflow.run_id``/
    ``airflow.task_id``) in ``experiment_name`` (default: the DAG id), then registers
    ``model_uri`` as a new version of registered model ``model_name``. XCom ``mlflow_run_id``
    holds the MLflow run id.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "model_uri",
        "model_params",
        "metrics",
        "tags",
        "experiment_name",
    )
    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        model_name: str,
        model_uri: str,
        model_params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        experiment_name: str | None = None,
        mlflow_conn_id: str = _DEFAULT_MLFLOW_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.model_uri = model_uri
        self.model_params = model_params or {}
        self.metrics = metrics or {}
        self.tags = tags or {}
        self.experiment_name = experiment_name
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Any) -> str:
        """Create the run, register the version and push ``mlflow_run_id``."""
        from mlwf_operators.hooks.mlflow import MlflowHook

        owner = f"task {self.task_id!r}"
        name = require_text(owner, "model_name", self.model_name)
        uri = require_text(owner, "model_uri", self.model_uri)
        for argument in ("model_params", "metrics", "tags"):
            if not isinstance(getattr(self, argument), dict):
                raise ValueError(
                    f"{owner}: argument {argument!r} must be a dict, got {getattr(self, argument)!r}"
                )
        bad = {
            k: v
            for k, v in self.metrics.items()
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
        }
        if bad:
            raise ValueError(
                f"{owner}: argument 'metrics' must map names to finite numbers; bad entries: {bad!r}"
            )
        ti = context["ti"]
        lineage = {
            "airflow.dag_id": str(ti.dag_id),
            "airflow.run_id": str(ti.run_id),
            "airflow.task_id": str(ti.task_id),
        }
        recorded = MlflowHook(self.mlflow_conn_id).record_model_version(
            name=name,
            model_uri=uri,
            experiment_name=self.experiment_name or str(ti.dag_id),
            params=self.model_params,
            metrics={k: float(v) for k, v in self.metrics.items()},
            tags={**{str(k): str(v) for k, v in self.tags.items()}, **lineage},
        )
        self.log.info(
            "Recorded %s version %s (MLflow run %s)", name, recorded.version, recorded.run_id
        )
        ti.xcom_push(key="mlflow_run_id", value=recorded.run_id)
        return recorded.version
