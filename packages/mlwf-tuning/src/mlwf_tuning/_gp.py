"""Gaussian-process Bayesian optimization as an Optuna sampler, on scikit-learn (no PyTorch).

Optuna's own ``GPSampler`` needs PyTorch, a dependency of several GB; this sampler fits
scikit-learn's ``GaussianProcessRegressor`` instead and keeps no state besides its random
generator, so a study rebuilt from recorded experiments samples what the original one would.

Every numeric hyperparameter becomes one coordinate of the unit cube (log-scaled ones in log
space), every categorical one a one-hot block. The model is a Matern 5/2 kernel with one length scale per
coordinate, times a constant, plus white noise, fitted to the standardized values of the complete
trials. The next point maximizes expected improvement over random candidates: uniform ones plus
Gaussian perturbations of the best points seen, each rounded to a value the parameter can take.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:  # scipy, scikit-learn and threadpoolctl ship no type information
    from sklearn.gaussian_process import GaussianProcessRegressor  # type: ignore[import-untyped]
    from sklearn.gaussian_process.kernels import Kernel  # type: ignore[import-untyped]

# scikit-learn, SciPy and threadpoolctl are imported when the first modelled point is planned,
# not while the startup trials are drawn at random: a tuning task imports them in a thread
# meanwhile (``SearchMethod.modules`` of ``gp``), so its first rounds do not wait for them.

Points = NDArray[np.float64]

#: Best points whose neighbourhood is searched, and the spreads of that search (unit-cube units).
_N_LOCAL_CENTERS = 5
_LOCAL_SCALES = (0.01, 0.05, 0.2)
#: The share of local candidates that try another category of each categorical parameter.
_CATEGORY_SWITCH = 0.2


def default_startup_trials(n_experiments: int) -> int:
    """Return the random experiments a GP search of ``n_experiments`` runs before modelling.

    A third of the budget, between 2 (a model needs some spread) and 10 (enough for the
    length scales of a few dimensions); small budgets thus still get some modelled rounds.
    """
    return min(10, max(2, n_experiments // 3))


class _UnitCube:
    """Maps parameters of a search space to points of the unit cube and back."""

    def __init__(self, search_space: dict[str, BaseDistribution]) -> None:
        self.names = sorted(search_space)  # a stable column order, whatever the dict's order
        self.dists = search_space
        self.columns: dict[str, slice] = {}
        width = 0
        for name in self.names:
            dist = search_space[name]
            n = len(dist.choices) if isinstance(dist, CategoricalDistribution) else 1
            self.columns[name] = slice(width, width + n)
            width += n
        self.width = width

    def encode(self, params: dict[str, Any]) -> Points:
        """Return the point of one trial's parameters."""
        point = np.zeros(self.width)
        for name in self.names:
            dist, cols = self.dists[name], self.columns[name]
            if isinstance(dist, CategoricalDistribution):
                point[cols.start + int(dist.to_internal_repr(params[name]))] = 1.0
            else:
                assert isinstance(dist, FloatDistribution | IntDistribution)
                point[cols] = _to_unit(dist, np.array([float(params[name])]))
        return point

    def decode(self, point: Points) -> dict[str, Any]:
        """Return the parameters of one (snapped) point."""
        params: dict[str, Any] = {}
        for name in self.names:
            dist, cols = self.dists[name], self.columns[name]
            if isinstance(dist, CategoricalDistribution):
                params[name] = dist.to_external_repr(int(np.argmax(point[cols])))
            else:
                assert isinstance(dist, FloatDistribution | IntDistribution)
                value = float(_from_unit(dist, point[cols])[0])
                params[name] = round(value) if isinstance(dist, IntDistribution) else value
        return params

    def snap(self, points: Points) -> Points:
        """Move every point to the nearest one whose parameters are values they can take."""
        out = np.empty_like(points)
        for name in self.names:
            dist, cols = self.dists[name], self.columns[name]
            if isinstance(dist, CategoricalDistribution):
                block = np.zeros((len(points), cols.stop - cols.start))
                block[np.arange(len(points)), np.argmax(points[:, cols], axis=1)] = 1.0
                out[:, cols] = block
            else:
                assert isinstance(dist, FloatDistribution | IntDistribution)
                out[:, cols.start] = _to_unit(dist, _from_unit(dist, points[:, cols.start]))
        return out

    def uniform(self, n: int, rng: np.random.Generator) -> Points:
        """Return ``n`` snapped points drawn uniformly (categories uniformly too)."""
        points = rng.random((n, self.width))
        return self.snap(points)

    def around(self, centers: Points, n: int, rng: np.random.Generator) -> Points:
        """Return ``n`` snapped Gaussian perturbations of each center, at several spreads."""
        points = np.repeat(centers, n, axis=0)
        scales = rng.choice(_LOCAL_SCALES, size=(len(points), 1))
        points = points + scales * rng.normal(size=points.shape)
        for name in self.names:
            dist, cols = self.dists[name], self.columns[name]
            if isinstance(dist, CategoricalDistribution):
                # Noise never outweighs a one-hot margin of 1: switch some to another category.
                switch = rng.random(len(points)) < _CATEGORY_SWITCH
                points[switch, cols] = rng.random((int(switch.sum()), cols.stop - cols.start))
        return self.snap(points)


def _to_unit(dist: FloatDistribution | IntDistribution, values: Points) -> Points:
    if dist.log:
        low, high, values = math.log(dist.low), math.log(dist.high), np.log(values)
    else:
        low, high = dist.low, dist.high
    return np.asarray((values - low) / (high - low), dtype=np.float64)


def _from_unit(dist: FloatDistribution | IntDistribution, units: Points) -> Points:
    units = np.clip(units, 0.0, 1.0)
    if dist.log:
        values = np.exp(math.log(dist.low) + units * (math.log(dist.high) - math.log(dist.low)))
    else:
        values = dist.low + units * (dist.high - dist.low)
    step = dist.step if dist.step is not None else (1 if isinstance(dist, IntDistribution) else 0)
    if step:
        values = dist.low + np.round((values - dist.low) / step) * step
    return np.asarray(np.clip(values, dist.low, dist.high), dtype=np.float64)


def _kernel(width: int) -> Kernel:
    from sklearn.gaussian_process.kernels import (
        ConstantKernel,
        Matern,
        WhiteKernel,
    )

    matern = Matern(length_scale=np.full(width, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5)
    return ConstantKernel(1.0, (1e-2, 1e2)) * matern + WhiteKernel(1e-3, (1e-6, 1e-1))


def _lbfgs(
    objective: Callable[[Points], tuple[float, Points]], theta: Points, bounds: Points
) -> tuple[Points, float]:
    # scikit-learn's default, with a looser tolerance: a third fewer likelihood evaluations (each
    # a millisecond of Python), for kernel parameters no less useful to the search.
    from scipy.optimize import minimize  # type: ignore[import-untyped]

    result = minimize(
        objective, theta, method="L-BFGS-B", jac=True, bounds=bounds, options={"ftol": 1e-4}
    )
    return result.x, float(result.fun)


def _fit(
    x: Points, y: Points, kernel: Kernel, *, restarts: int, seed: int | None, optimize: bool
) -> GaussianProcessRegressor:
    from sklearn.exceptions import ConvergenceWarning  # type: ignore[import-untyped]
    from sklearn.gaussian_process import GaussianProcessRegressor

    gp = GaussianProcessRegressor(
        kernel,
        alpha=1e-8,  # jitter on top of the fitted white noise, for a stable Cholesky factor
        normalize_y=True,
        n_restarts_optimizer=restarts,
        optimizer=_lbfgs if optimize else None,
        random_state=seed,
    )
    with warnings.catch_warnings():
        # A length scale at its bound (an irrelevant dimension) is a normal outcome, not a problem.
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x, y)
    return gp


def _expected_improvement(gp: GaussianProcessRegressor, x: Points, best: float) -> Points:
    from scipy.special import ndtr  # type: ignore[import-untyped]

    mean, std = gp.predict(x, return_std=True)
    std = np.maximum(std, 1e-12)
    z = (best - mean) / std
    return np.asarray((best - mean) * ndtr(z) + std * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi))


class GaussianProcessSampler(BaseSampler):
    """Bayesian optimization with a scikit-learn Gaussian process and expected improvement.

    The first ``n_startup_trials`` complete trials, and any parameter outside the search space
    every trial shares, are sampled by a ``RandomSampler`` with the same seed. Only complete
    trials are modelled; running ones (the rest of a parallel round) are added as if they had
    returned the mean value so far (a "constant liar"), which steers a round's points apart.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        n_startup_trials: int = 10,
        n_candidates: int = 2048,
        n_restarts: int = 1,
    ) -> None:
        if n_startup_trials < 1:
            raise ValueError(f"n_startup_trials must be >= 1; got {n_startup_trials}")
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)
        self._search_space = IntersectionSearchSpace()
        self.n_startup_trials = n_startup_trials
        self.n_candidates = n_candidates
        self.n_restarts = n_restarts

    def reseed_rng(self) -> None:
        """Reseed the random generators (Optuna calls this for each of ``n_jobs`` workers)."""
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """Return the parameters every complete trial has, except those with a single value."""
        return {
            name: dist
            for name, dist in self._search_space.calculate(study).items()
            if not dist.single()
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Return the parameters maximizing expected improvement, or none during startup."""
        self._raise_error_if_multi_objective(study)
        if not search_space:
            return {}
        observed = [
            (t.params, t.value)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None
            and math.isfinite(t.value)
            and search_space.keys() <= t.params.keys()
        ]
        if len(observed) < self.n_startup_trials:
            return {}  # still starting up: random, without the model's libraries
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        # Matrices of a few dozen rows: BLAS threads only contend (2-4x slower on a busy host).
        with threadpool_limits(limits=1):
            return self._maximize_expected_improvement(study, trial, search_space, observed)

    def _maximize_expected_improvement(
        self,
        study: Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
        observed: list[tuple[dict[str, Any], float]],
    ) -> dict[str, Any]:
        cube = _UnitCube(search_space)
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0  # model a minimization
        x = np.array([cube.encode(params) for params, _ in observed])
        y = np.array([sign * value for _, value in observed])
        seed = int(self._rng.integers(2**31))
        gp = _fit(x, y, _kernel(cube.width), restarts=self.n_restarts, seed=seed, optimize=True)
        pending = [
            cube.encode(t.params)
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number != trial.number and search_space.keys() <= t.params.keys()
        ]
        if pending:  # the fitted kernel, conditioned on the lies as well
            lies = np.full(len(pending), float(np.mean(y)))
            gp = _fit(
                np.vstack([x, pending]),
                np.concatenate([y, lies]),
                gp.kernel_,
                restarts=0,
                seed=seed,
                optimize=False,
            )
        best = float(np.min(y))
        centers = x[np.argsort(y, kind="stable")[:_N_LOCAL_CENTERS]]
        candidates = np.vstack(
            [
                cube.uniform(self.n_candidates, self._rng),
                cube.around(centers, self.n_candidates // (2 * len(centers)), self._rng),
            ]
        )
        ei = _expected_improvement(gp, candidates, best)
        # Refine: the neighbourhood of the best candidates, at the finer spreads too.
        top = candidates[np.argsort(-ei, kind="stable")[:_N_LOCAL_CENTERS]]
        refined = cube.around(top, self.n_candidates // (4 * len(top)), self._rng)
        candidates = np.vstack([candidates, refined])
        ei = np.concatenate([ei, _expected_improvement(gp, refined, best)])
        return cube.decode(candidates[int(np.argmax(ei))])

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """Sample a parameter outside the modelled space (or during startup) at random."""
        return self._random.sample_independent(study, trial, param_name, param_distribution)
