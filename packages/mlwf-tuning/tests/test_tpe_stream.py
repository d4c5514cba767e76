"""TPE plans from one random stream for the whole tuning: a plan rebuilt from records draws what one long-lived Optuna sampler draws."""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
import pytest
from mlwf_tuning import (
    Categorical,
    ExperimentRecord,
    ExperimentState,
    FloatRange,
    HyperparameterTuningSpec,
    IntRange,
    SearchMethod,
    plan,
    register_method,
)
from mlwf_tuning._planner import distributions, round_seed
from mlwf_tuning._samplers import tpe_fast_forward

SPACE = {
    "lr": FloatRange(1e-4, 1e-1, log=True),
    "depth": IntRange(2, 10, step=2),
    "units": IntRange(8, 512, log=True),
    "kernel": Categorical(["rbf", "linear", 3]),
    "x": FloatRange(-1.0, 1.0),
    "fixed": Categorical(["only"]),  # a single value: Optuna draws nothing for it
}


def _outcome(params: dict[str, Any], index: int) -> tuple[ExperimentState, float | None]:
    """Fail every 7th experiment, prune every 5th (after two steps), succeed otherwise."""
    loss = abs(math.log10(params["lr"]) + 2) + params["depth"] / 10 + params["x"] ** 2
    if index % 7 == 3:
        return ExperimentState.FAILED, None
    if index % 5 == 4:
        return ExperimentState.PRUNED, loss
    return ExperimentState.SUCCEEDED, loss


def _mlwf(spec: HyperparameterTuningSpec) -> list[dict[str, Any]]:
    records: list[ExperimentRecord] = []
    while new := plan(spec, records):
        for r in new:
            state, loss = _outcome(r.params, r.index)
            if state == ExperimentState.SUCCEEDED:
                records.append(r.evolve(state=state, metrics={"loss": loss}))
            elif state == ExperimentState.PRUNED:
                records.append(r.evolve(state=state, intermediate={1: 9.0, 2: loss}))
            else:
                records.append(r.evolve(state=state, error="boom"))
    return [r.params for r in records]


def _optuna(spec: HyperparameterTuningSpec) -> list[dict[str, Any]]:
    """Optuna's own ask-and-tell loop with one sampler for the whole study, round by round."""
    dists = distributions(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=spec.seed, constant_liar=spec.parallelism > 1)
    study = optuna.create_study(sampler=sampler)
    total = spec.total_experiments()
    for start in range(0, total, spec.parallelism):
        trials = [study.ask(dists) for _ in range(min(spec.parallelism, total - start))]
        for trial in trials:
            state, loss = _outcome(trial.params, trial.number)
            if state == ExperimentState.SUCCEEDED:
                study.tell(trial, loss)
            elif state == ExperimentState.PRUNED:
                assert loss is not None
                trial.report(9.0, 1)
                trial.report(loss, 2)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return [t.params for t in study.trials]


@pytest.mark.parametrize(("parallelism", "seed"), [(1, 0), (1, 11), (3, 0), (4, 5)])
def test_tpe_draws_what_one_long_lived_optuna_sampler_draws(parallelism: int, seed: int) -> None:
    """Planning round by round from records suggests, bit for bit, what one TPESampler(seed) kept for the whole study suggests (failed and pruned experiments included)."""
    spec = HyperparameterTuningSpec(
        hyperparameters=SPACE,
        metric="loss",
        method="tpe",
        n_experiments=30,
        parallelism=parallelism,
        seed=seed,
    )
    assert _mlwf(spec) == _optuna(spec)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**70])
def test_a_seed_numpy_refuses_still_plans_deterministically(seed: int) -> None:
    """A negative or too large spec seed (which NumPy refuses) plans TPE from a seed derived from it, the same every time."""
    spec = HyperparameterTuningSpec(
        hyperparameters=SPACE, metric="loss", method="tpe", n_experiments=14, seed=seed
    )
    assert _mlwf(spec) == _mlwf(spec)


def test_fast_forward_refuses_another_sampler() -> None:
    """tpe_fast_forward raises TypeError naming the sampler it was given instead of a TPESampler."""
    spec = HyperparameterTuningSpec(
        hyperparameters=SPACE, metric="loss", method="tpe", n_experiments=4
    )
    with pytest.raises(TypeError, match="RandomSampler"):
        tpe_fast_forward(optuna.samplers.RandomSampler(seed=0), spec, [])


def test_an_adaptive_method_without_fast_forward_is_seeded_per_round() -> None:
    """A plugged-in adaptive method gets a sampler seeded from the spec's seed and the number of recorded experiments, as before."""
    seeds: list[int] = []

    def factory(spec: HyperparameterTuningSpec, seed: int) -> optuna.samplers.BaseSampler:
        seeds.append(seed)
        return optuna.samplers.RandomSampler(seed=seed)

    register_method(SearchMethod("per-round-test", factory))
    spec = HyperparameterTuningSpec(
        hyperparameters={"x": FloatRange(0, 1)},
        metric="loss",
        method="per-round-test",
        n_experiments=4,
        parallelism=2,
        seed=3,
    )
    records = [
        r.evolve(state=ExperimentState.SUCCEEDED, metrics={"loss": 1.0}) for r in plan(spec, [])
    ]
    plan(spec, records)
    assert seeds[-2:] == [round_seed(3, 0), round_seed(3, 2)]
