"""Search methods: built-in grid, random and Bayesian (TPE, Gaussian process) ones, plus plugins.

``gp`` is this package's own ``GaussianProcessSampler`` (scikit-learn), not Optuna's
``GPSampler``, which needs PyTorch (several GB).

A method is a ``SearchMethod``: a factory of an Optuna sampler, and whether its plan is fixed up
front (grid, random: the whole plan is known before any result) or adaptive (Bayesian: planned in
rounds of ``parallelism``, each round conditioned on every result so far). Other packages add
methods through the entry point group ``mlwf.tuning.methods``; an entry point names either a
``SearchMethod`` or a plain ``(spec, seed) -> optuna.samplers.BaseSampler`` factory (adaptive).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from mlwf_tuning._errors import UnknownTuningMethod

if (
    TYPE_CHECKING
):  # optuna is imported when planning only: DAG files that declare tunings parse fast
    import optuna

    from mlwf_tuning._spec import HyperparameterTuningSpec

ENTRY_POINT_GROUP = "mlwf.tuning.methods"

SamplerFactory = Callable[["HyperparameterTuningSpec", int], "optuna.samplers.BaseSampler"]


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


def _grid_sampler(spec: HyperparameterTuningSpec, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    space = {name: hp.grid_values(name) for name, hp in spec.hyperparameters.items()}
    return optuna.samplers.GridSampler(space, seed=seed)


def _check_grid(spec: HyperparameterTuningSpec) -> None:
    from mlwf_tuning._limits import max_experiments

    size = spec.grid_size()  # ValueError naming a continuous FloatRange; counted, never listed
    limit = max_experiments()
    if size > limit:
        # Optuna's GridSampler lists every point of the grid, whatever n_experiments says.
        raise ValueError(
            f"the grid has {size} points, more than the limit of {limit} experiments per "
            "tuning ([mlwf_tuning] max_experiments); use fewer values or a coarser step"
        )
    if spec.n_experiments is not None and spec.n_experiments > size:
        raise ValueError(
            f"n_experiments={spec.n_experiments} exceeds the grid's {size} points; "
            "leave n_experiments unset to run the full grid once"
        )


def _random_sampler(spec: HyperparameterTuningSpec, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _tpe_sampler(spec: HyperparameterTuningSpec, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    if spec.parallelism == 1:
        return optuna.samplers.TPESampler(seed=seed)
    # With parallel rounds, the constant liar keeps a round's suggestions apart from each other;
    # Optuna marks the option experimental (a warning on every round), which we accept knowingly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _gp_sampler(spec: HyperparameterTuningSpec, seed: int) -> optuna.samplers.BaseSampler:
    # Imported here: scikit-learn takes a second to import, and parsing a DAG file never plans.
    from mlwf_tuning._gp import GaussianProcessSampler, default_startup_trials

    startup = default_startup_trials(spec.total_experiments())
    return GaussianProcessSampler(seed=seed, n_startup_trials=startup)


grid = SearchMethod("grid", _grid_sampler, plans_upfront=True, check=_check_grid)
random = SearchMethod("random", _random_sampler, plans_upfront=True)
tpe = SearchMethod("tpe", _tpe_sampler)
gp = SearchMethod("gp", _gp_sampler)

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
    raise UnknownTuningMethod(
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
    """Return the method called ``name``, or raise ``UnknownTuningMethod`` listing the known ones."""
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
    raise UnknownTuningMethod(
        f"unknown tuning method {name!r}; known methods: {', '.join(available_methods())} "
        f"(add one through the entry point group {ENTRY_POINT_GROUP!r})"
    )
