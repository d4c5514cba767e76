"""``HyperparameterTuningSpec``: what to tune, how, towards which metric, and within which limits."""

from __future__ import annotations

import hashlib
import math
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlwf_tuning._limits import max_experiments
from mlwf_tuning._space import Hyperparameter

Direction = Literal["minimize", "maximize"]


class MedianStopping(BaseModel):
    """Stop an experiment whose intermediate value is worse than the median of finished ones.

    At a reported ``step`` (at least ``warmup_steps``), an experiment is stopped when its value is
    worse than the median of the values that finished experiments reported at that same step,
    provided at least ``min_experiments`` finished experiments reported that step.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_experiments: int = Field(default=5, ge=1)
    warmup_steps: int = Field(default=0, ge=0)


class HyperparameterTuningSpec(BaseModel):
    """A complete, validated description of one hyperparameter tuning.

    Built from Python or from JSON (``HyperparameterTuningSpec.model_validate_json``); an invalid
    spec raises ``pydantic.ValidationError`` (a ``ValueError``) naming the field at fault.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    hyperparameters: dict[str, Hyperparameter]
    metric: str
    direction: Direction = "minimize"
    method: str = "tpe"
    n_experiments: int | None = Field(default=None, ge=1)
    parallelism: int = Field(default=1, ge=1)
    max_failed_experiments: int = Field(default=0, ge=0)
    seed: int = 0
    early_stopping: MedianStopping | None = None
    time_budget_s: float | None = Field(default=None, gt=0)
    #: How long a round of a tuning DAG waits without any of its experiment runs ending before
    #: it records the runs still going as failed; None: ``[mlwf_tuning] experiment_timeout_s``.
    experiment_timeout_s: float | None = Field(default=None, gt=0)

    @field_validator("hyperparameters")
    @classmethod
    def _some_hyperparameters(cls, value: dict[str, Hyperparameter]) -> dict[str, Hyperparameter]:
        if not value:
            raise ValueError("at least one hyperparameter is needed; got none")
        bad = [name for name in value if not name or not name.strip()]
        if bad:
            raise ValueError("hyperparameter names must be non-empty strings")
        return value

    @field_validator("metric")
    @classmethod
    def _metric_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("metric must name the metric to optimize; got an empty string")
        return value

    @field_validator("time_budget_s", "experiment_timeout_s")
    @classmethod
    def _finite_seconds(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{info.field_name} must be finite; got {value}")
        return value

    @model_validator(mode="after")
    def _method_fits(self) -> HyperparameterTuningSpec:
        # Imported here: the method registry imports this module for its type annotations.
        from mlwf_tuning._methods import resolve_method

        limit = max_experiments()
        if self.n_experiments is not None and self.n_experiments > limit:
            raise ValueError(
                f"n_experiments={self.n_experiments} exceeds the limit of {limit} experiments "
                "per tuning ([mlwf_tuning] max_experiments)"
            )
        method = resolve_method(self.method)  # UnknownTuningMethod (a ValueError) names the method
        method.check(self)  # a grid checks its size against the same limit
        if self.n_experiments is None and method.name != "grid":
            raise ValueError(
                f"n_experiments is required for method {self.method!r} "
                "(only a grid search defaults to the size of its grid)"
            )
        return self

    def grid_size(self) -> int:
        """Return the number of points of the full grid (for a grid search), without listing them."""
        size = 1
        for name, hp in self.hyperparameters.items():
            size *= hp.grid_size(name)
        return size

    def total_experiments(self) -> int:
        """Return the number of experiments this tuning runs."""
        return self.n_experiments if self.n_experiments is not None else self.grid_size()

    def plan_json(self) -> str:
        """Return the spec as JSON without the settings that never change the plan.

        ``max_failed_experiments``, ``time_budget_s`` and ``experiment_timeout_s`` only decide
        when a tuning stops, so a stopped tuning may be resumed with a larger tolerance or budget.
        """
        return self.model_dump_json(
            exclude={"max_failed_experiments", "time_budget_s", "experiment_timeout_s"}
        )

    def fingerprint(self) -> str:
        """Return a short stable hash of the plan (the default tuning id of a local search)."""
        return hashlib.sha256(self.plan_json().encode()).hexdigest()[:12]
