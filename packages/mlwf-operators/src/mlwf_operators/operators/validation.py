"""Validate a model on held-out data against metric thresholds."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context
from mlwf_types import typed

from mlwf_operators._errors import ModelValidationError

__all__ = [
    "ValidateModelOperator",
    "ModelValidationError",
    "check_thresholds",
    "normalise_thresholds",
]

DEFAULT_EVALUATOR = "mlwf_operators.trainers.sklearn_reference:evaluate"
Bounds = dict[str, float]


def normalise_thresholds(thresholds: Mapping[str, Any]) -> dict[str, Bounds]:
    """Turn ``{"accuracy": 0.9, "log_loss": {"max": 0.3}}`` into ``{name: {"min"/"max": bound}}``.

    A bare number is a minimum. Anything else is refused naming the metric.
    """
    if not isinstance(thresholds, Mapping) or not thresholds:
        raise ValueError(
            f"thresholds must be a non-empty mapping of metric to bound, got {thresholds!r}"
        )
    result: dict[str, Bounds] = {}
    for name, bound in thresholds.items():
        if isinstance(bound, (int, float)) and not isinstance(bound, bool):
            result[name] = {"min": float(bound)}
        elif (
            isinstance(bound, Mapping)
            and bound
            and set(bound) <= {"min", "max"}
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bound.values())
        ):
            result[name] = {k: float(v) for k, v in bound.items()}
        else:
            raise ValueError(
                f"threshold of metric {name!r} must be a number (a minimum) or "
                f'{{"min": x, "max": y}} (either or both), got {bound!r}'
            )
    return result


def check_thresholds(metrics: Mapping[str, float], thresholds: Mapping[str, Any]) -> list[str]:
    """Return one message per threshold ``metrics`` miss (empty when all are met)."""
    misses = []
    for name, bounds in normalise_thresholds(thresholds).items():
        if name not in metrics:
            misses.append(
                f"metric {name!r} has a threshold but the evaluator returned only {sorted(metrics)}"
            )
            continue
        value = metrics[name]
        if math.isnan(value):
            misses.append(f"{name} is NaN")
            continue
        if "min" in bounds and value < bounds["min"]:
            misses.append(f"{name} = {value:.4f} is below the minimum {bounds['min']:g}")
        if "max" in bounds and value > bounds["max"]:
            misses.append(f"{name} = {value:.4f} is above the maximum {bounds['max']:g}")
    return misses


@typed(
    inputs={
        "model_uri": str,
        "data": str,
        "thresholds": dict[str, float | dict[str, float]],
        "evaluator": str,
    },
    outputs={"return_value": dict[str, float]},
)
class ValidateModelOperator(BaseOperator):
    """Evaluate a model on held-out data and fail when a metric misses its threshold.

    ``evaluator`` names a callable ``evaluate(model_dir: Path, data: str) -> dict[str, float]``
    (default: the reference trainer's, which scores the held-out 25 % of a bundled dataset).
    ``thresholds``: ``{"accuracy": 0.9}`` (a minimum) or ``{"log_loss": {"max": 0.3}}``.
    Returns the metrics.
    """

    template_fields = ("model_uri", "data", "thresholds")
    ui_color = "#e3f6d8"

    def __init__(
        self,
        *,
        model_uri: str,
        thresholds: dict[str, float | dict[str, float]],
        data: str = "sklearn://breast_cancer",
        evaluator: str = DEFAULT_EVALUATOR,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        try:
            normalise_thresholds(thresholds)
        except ValueError as exc:
            raise ValueError(f"task {self.task_id!r}: {exc}") from None
        self.model_uri = model_uri
        self.thresholds = thresholds
        self.data = data
        self.evaluator = evaluator

    def execute(self, context: Context) -> dict[str, float]:
        """Evaluate the model and check every threshold; return the metrics."""
        from mlwf_operators.artifacts import artifact_store_for
        from mlwf_operators.trainers._child import check_metrics, load_entry_point

        store = artifact_store_for(self.model_uri)
        evaluate = load_entry_point(self.evaluator)
        with tempfile.TemporaryDirectory(prefix="mlwf-validate-") as scratch:
            model_dir = store.get_dir(self.model_uri, Path(scratch))
            metrics = check_metrics(evaluate(model_dir, self.data), self.evaluator)
        self.log.info("metrics of %s on %s: %s", self.model_uri, self.data, metrics)
        misses = check_thresholds(metrics, self.thresholds)
        if misses:
            raise ModelValidationError(
                f"model {self.model_uri} failed validation on {self.data}: " + "; ".join(misses)
            )
        return metrics
