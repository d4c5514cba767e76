"""The samplers of the built-in search methods (grid, random, TPE, Gaussian process), and the grid's check.

``gp`` is this package's own ``GaussianProcessSampler`` (scikit-learn), not Optuna's
``GPSampler``, which needs PyTorch (several GB). Optuna and scikit-learn are imported when a
tuning plans, never when a DAG file declaring one is parsed.

Below the spec in the import graph: the factories take any object with the spec's attributes
they read (``SpecView``), which ``HyperparameterTuningSpec`` is.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from mlwf_tuning._limits import max_experiments
from mlwf_tuning._space import Hyperparameter

# optuna is imported when planning only: DAG files that declare tunings parse fast.
if TYPE_CHECKING:
    import optuna


class SpecView(Protocol):
    """What the built-in methods read of a ``HyperparameterTuningSpec``."""

    @property
    def hyperparameters(self) -> Mapping[str, Hyperparameter]: ...
    @property
    def n_experiments(self) -> int | None: ...
    @property
    def parallelism(self) -> int: ...
    def grid_size(self) -> int: ...
    def total_experiments(self) -> int: ...


def grid_sampler(spec: SpecView, seed: int) -> optuna.samplers.BaseSampler:
    """Return Optuna's grid sampler over every point of the spec's grid."""
    import optuna

    space = {name: hp.grid_values(name) for name, hp in spec.hyperparameters.items()}
    return optuna.samplers.GridSampler(space, seed=seed)


def check_grid(spec: SpecView) -> None:
    """Raise ``ValueError`` when the grid is too large or smaller than ``n_experiments``."""
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


def random_sampler(spec: SpecView, seed: int) -> optuna.samplers.BaseSampler:
    """Return Optuna's random sampler."""
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def tpe_sampler(spec: SpecView, seed: int) -> optuna.samplers.BaseSampler:
    """Return Optuna's TPE sampler (a constant liar when a round runs several experiments)."""
    import optuna

    if spec.parallelism == 1:
        return optuna.samplers.TPESampler(seed=seed)
    # With parallel rounds, the constant liar keeps a round's suggestions apart from each other;
    # Optuna marks the option experimental (a warning on every round), which we accept knowingly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def gp_sampler(spec: SpecView, seed: int) -> optuna.samplers.BaseSampler:
    """Return this package's Gaussian-process sampler (scikit-learn)."""
    # Imported here: scikit-learn takes a second to import, and parsing a DAG file never plans.
    from mlwf_tuning._gp import GaussianProcessSampler, default_startup_trials

    startup = default_startup_trials(spec.total_experiments())
    return GaussianProcessSampler(seed=seed, n_startup_trials=startup)
