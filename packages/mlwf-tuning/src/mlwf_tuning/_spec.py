"""``HyperparameterTuningSpec``: what to tune, how, towards which metric, and within which limits;
and the search methods its ``method`` may name.

A method is a ``SearchMethod``: a factory of an Optuna sampler, and whether its plan is fixed up
front (grid, random: the whole plan is known before any result) or adaptive (Bayesian: planned in
rounds of ``parallelism``, each round conditioned on every result so far). Other packages add
methods through the entry point group ``mlwf.tuning.methods``; an entry point names either a
``SearchMethod`` or a plain ``(spec, seed) -> optuna.samplers.BaseSampler`` factory (adaptive).

The spec and the method registry share this module because each needs the other: a spec is
validated against its method (``SearchMethod.check``), and a method is a function of a spec.
The built-in samplers sit below, in ``_samplers``.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlwf_tuning._errors import UnknownTuningMethodError
from mlwf_tuning._limits import max_experiments
from mlwf_tuning._records import ExperimentRecord
from mlwf_tuning._samplers import (
    check_grid,
    gp_sampler,
    grid_sampler,
    random_sampler,
    tpe_fast_forward,
    tpe_sampler,
)
from mlwf_tuning._space import Hyperparameter

# optuna is imported when planning only: DAG files that declare tunings parse fast.
if TYPE_CHECKING:
    import optuna

Direction = Literal["minimize", "maximize"]
ENTRY_POINT_GROUP = "mlwf.tuning.methods"

SamplerFactory = Callable[["HyperparameterTuningSpec", int], "optuna.samplers.BaseSampler"]
FastForward = Callable[
    ["optuna.samplers.BaseSampler", "HyperparameterTuningSpec", Sequence[ExperimentRecord]], None
]


def _no_check(spec: HyperparameterTuningSpec) -> None:
    """Accept every spec."""


@dataclass(frozen=True)
class SearchMethod:
    """A named way of choosing experiments, backed by an Optuna sampler."""

    name: str
    make_sampler: SamplerFactory
    #: True when the whole plan is fixed before any result (grid, random): planned all at once.
    plans_upfront: bool = False
    #: Raise ``ValueError`` naming the problem when the method cannot run this spec.
    check: Callable[[HyperparameterTuningSpec], None] = field(default=_no_check)
    #: For an adaptive method whose sampler keeps one random stream for the whole tuning: move a
    #: sampler made with the spec's seed past what the recorded experiments drew. None: every
    #: round's sampler is seeded from the spec's seed and the number of recorded experiments.
    fast_forward: FastForward | None = None
    #: Modules the method's planning imports: a tuning task imports them in a thread while it
    #: opens the tuning and reads the records, so the first plan does not wait for them.
    modules: tuple[str, ...] = ("optuna",)


grid = SearchMethod("grid", grid_sampler, plans_upfront=True, check=check_grid)
random = SearchMethod("random", random_sampler, plans_upfront=True)
tpe = SearchMethod("tpe", tpe_sampler, fast_forward=tpe_fast_forward)
gp = SearchMethod(
    "gp",
    gp_sampler,
    # The model's libraries last: the random startup rounds need only the sampler module.
    modules=(
        "optuna",
        "mlwf_tuning._gp",
        "scipy.optimize",
        "scipy.special",
        "sklearn.gaussian_process",
        "threadpoolctl",
    ),
)

_BUILTIN = {"grid": grid, "random": random, "tpe": tpe, "bayesian": tpe, "gp": gp}
_REGISTERED: dict[str, SearchMethod] = {}


def register_method(method: SearchMethod) -> None:
    """Register a method in this process (entry points are the way for installed packages)."""
    _REGISTERED[method.name] = method


def _as_method(name: str, loaded: Any) -> SearchMethod:
    if isinstance(loaded, SearchMethod):
        return loaded
    if callable(loaded):
        return SearchMethod(name, loaded)
    raise UnknownTuningMethodError(
        f"entry point {name!r} in group {ENTRY_POINT_GROUP!r} is {type(loaded).__name__}, "
        "not a SearchMethod or a sampler factory"
    )


@functools.cache
def _plugins() -> dict[str, EntryPoint]:
    # Scanning installed distributions costs milliseconds; planning resolves the method every round.
    return {
        ep.name: ep
        for ep in entry_points(group=ENTRY_POINT_GROUP)
        if ep.dist is None or ep.dist.name != "mlwf-tuning"  # our own built-ins need no import
    }


def available_methods() -> list[str]:
    """Return the names of every known method (built in, registered, and entry points)."""
    return sorted(set(_BUILTIN) | set(_REGISTERED) | set(_plugins()))


def resolve_method(name: str) -> SearchMethod:
    """Return the method called ``name``, or raise ``UnknownTuningMethodError`` listing the known ones."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    # Built-ins first, so that validating a spec (done when a DAG file is parsed) scans no
    # installed distributions for entry points (~160 ms here); an entry point cannot replace one.
    if name in _BUILTIN:
        return _BUILTIN[name]
    plugins = _plugins()
    if name in plugins:
        _REGISTERED[name] = _as_method(name, plugins[name].load())
        return _REGISTERED[name]
    raise UnknownTuningMethodError(
        f"unknown tuning method {name!r}; known methods: {', '.join(available_methods())} "
        f"(add one through the entry point group {ENTRY_POINT_GROUP!r})"
    )


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
        limit = max_experiments()
        if self.n_experiments is not None and self.n_experiments > limit:
            raise ValueError(
                f"n_experiments={self.n_experiments} exceeds the limit of {limit} experiments "
                "per tuning ([mlwf_tuning] max_experiments)"
            )
        method = resolve_method(
            self.method
        )  # UnknownTuningMethodError (a ValueError) names the method
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
