"""The samplers of the built-in search methods (grid, random, TPE, Gaussian process), and the grid's check.

``gp`` is this package's own ``GaussianProcessSampler`` (scikit-learn), not Optuna's
``GPSampler``, which needs PyTorch (several GB). Optuna and scikit-learn are imported when a
tuning plans, never when a DAG file declaring one is parsed.

Below the spec in the import graph: the factories take any object with the spec's attributes
they read (``SpecView``), which ``HyperparameterTuningSpec`` is.

TPE is planned from one random stream for the whole tuning, seeded with the spec's seed, as
Optuna's ``study.optimize`` would: ``tpe_fast_forward`` moves a new sampler's streams past what
the recorded experiments drew, so a sampler rebuilt every round draws exactly what one kept for
the whole tuning would (issue 15: re-seeding every round made mlwf's TPE a different, if equally
random, search from Optuna's, which no benchmark could then compare seed by seed).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from mlwf_tuning._limits import max_experiments
from mlwf_tuning._records import ExperimentRecord, ExperimentState
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


def tpe_fast_forward(
    sampler: optuna.samplers.BaseSampler, spec: SpecView, records: Sequence[ExperimentRecord]
) -> None:
    """Move a new TPE sampler's random streams to where one kept since the first round would be.

    ``TPESampler`` keeps no state besides two random streams: its ``RandomSampler``'s, which
    draws the startup experiments, and its own, which draws the candidates of modelled ones. How
    many numbers an experiment takes from them depends only on the search space and on whether
    the sampler was still starting up when the experiment was planned, never on any result:
    one per numeric hyperparameter (one per choice for a categorical) while starting up, and
    ``2 * n_ei_candidates`` per hyperparameter afterwards (mixture components, then values). So
    skipping that many numbers for every recorded experiment, in rounds of ``parallelism``, makes
    ``plan`` draw what Optuna's ``study.optimize`` with one ``TPESampler(seed=spec.seed)`` draws
    (``test_tpe_draws_what_one_long_lived_optuna_sampler_draws`` holds Optuna to that). Rounds
    are taken as ``search`` and the tuning DAG plan them, ``parallelism`` records each; records
    planned otherwise still give one deterministic plan.
    """
    import optuna

    if not isinstance(sampler, optuna.samplers.TPESampler):
        raise TypeError(f"tpe_fast_forward needs a TPESampler; got {type(sampler).__name__}")
    dists = [hp.distribution() for hp in spec.hyperparameters.values()]
    sampled = [d for d in dists if not d.single()]  # Optuna draws nothing for a single value
    startup_draws = sum(
        len(d.choices) if isinstance(d, optuna.distributions.CategoricalDistribution) else 1
        for d in sampled
    )
    modelled_draws = 2 * sampler._n_ei_candidates * len(sampled)
    ordered = sorted(records, key=lambda r: r.index)
    told = 0  # experiments finished before the round (failed ones do not count, as in Optuna)
    startup = modelled = 0
    for start in range(0, len(ordered), spec.parallelism):
        round_ = ordered[start : start + spec.parallelism]
        if told < sampler._n_startup_trials:
            startup += startup_draws * len(round_)
        else:
            modelled += modelled_draws * len(round_)
        told += sum(r.state in (ExperimentState.SUCCEEDED, ExperimentState.PRUNED) for r in round_)
    for rng, n in ((sampler._random_sampler._rng.rng, startup), (sampler._rng.rng, modelled)):
        while n > 0:  # every draw above is one double; in slices, so memory stays small
            rng.random_sample(min(n, 1 << 16))
            n -= min(n, 1 << 16)


def gp_sampler(spec: SpecView, seed: int) -> optuna.samplers.BaseSampler:
    """Return this package's Gaussian-process sampler (scikit-learn)."""
    # Imported here: scikit-learn takes a second to import, and parsing a DAG file never plans.
    from mlwf_tuning._gp import GaussianProcessSampler, default_startup_trials

    startup = default_startup_trials(spec.total_experiments())
    return GaussianProcessSampler(seed=seed, n_startup_trials=startup)
