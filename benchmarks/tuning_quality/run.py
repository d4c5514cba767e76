"""mlwf-tuning search quality: mlwf's TPE against Optuna's TPE with one sampler for the whole study.

Problems: four 2-D multimodal test functions (Branin, six-hump camel, Himmelblau, Rastrigin),
Hartmann-6, Rosenbrock-4, and a real model: an RBF SVC on scikit-learn's bundled breast-cancer
data (objective: 3-fold cross-validated error rate). Budgets: 20, 30 and 60 experiments; seeds
0 to SEEDS-1. The statistic is the regret after N experiments: the best value among the first N
minus the known optimum (for the SVC, the error rate itself).

Arms, per problem and seed (a TPE or random search of 60 experiments gives the regret after 20
and 30 too: neither sampler knows the budget, so its first 20 experiments are those of a
20-experiment search):

- ``mlwf_tpe``: ``mlwf_tuning.search`` with ``method="tpe"`` (sequential).
- ``optuna_tpe``, the baseline: Optuna's ``study.optimize`` with one ``TPESampler(seed=seed)``
  for the whole study. mlwf plans TPE from one stream seeded with the spec's seed, so the two
  are paired by seed: a Wilcoxon signed-rank test, the median of the per-seed regret ratios and
  the matched-pairs rank-biserial correlation.
- ``reseeded_tpe``: what mlwf planned before issue 15, through Optuna: a new ``TPESampler`` for
  every experiment, seeded from (seed, experiments so far) as mlwf's ``round_seed`` did. Its
  streams are not Optuna's, so it is compared in distribution: Mann-Whitney U and Cliff's delta.
- ``mlwf_random`` (60) and ``mlwf_gp`` (30 only: a GP search's startup depends on its budget, and
  a fit per experiment makes it the slow arm): context, TPE and GP against random.

The ratio of median regrets (candidate / Optuna's TPE) has a 95 % bootstrap interval: seeds
resampled as pairs for the paired arm, each arm on its own for the unpaired one. The estimates
``regret_ratio_<N>`` that benchmarks/targets.toml checks are the geometric means over problems.
Objective values are cached by parameters (the objectives are deterministic): the SVC is fitted
once for a point two arms share.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any

import numpy as np
import optuna
from mlwf_testsupport.benchmark import environment, estimate, write_result
from mlwf_tuning import FloatRange, HyperparameterTuningSpec, search
from scipy.stats import mannwhitneyu, wilcoxon
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

SEEDS = int(os.environ.get("TUNING_QUALITY_SEEDS", "40"))
BUDGETS = (20, 30, 60)
GP_BUDGET = 30
RESAMPLES = 10_000

# Hartmann-6 constants (Surjanovic & Bingham's virtual library of simulation experiments).
_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin(x: Sequence[float]) -> float:
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (
        (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x[0])
        + 10
    )


def six_hump_camel(x: Sequence[float]) -> float:
    u, v = x
    return (4 - 2.1 * u**2 + u**4 / 3) * u**2 + u * v + (-4 + 4 * v**2) * v**2


def himmelblau(x: Sequence[float]) -> float:
    u, v = x
    return (u**2 + v - 11) ** 2 + (u + v**2 - 7) ** 2


def rastrigin(x: Sequence[float]) -> float:
    return 10 * len(x) + sum(xi**2 - 10 * math.cos(2 * math.pi * xi) for xi in x)


def hartmann6(x: Sequence[float]) -> float:
    return float(-np.sum(_ALPHA * np.exp(-np.sum(_A * (np.array(x) - _P) ** 2, axis=1))))


def rosenbrock(x: Sequence[float]) -> float:
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


_X, _Y = load_breast_cancer(return_X_y=True)


def svc_error(x: Sequence[float]) -> float:
    model = make_pipeline(StandardScaler(), SVC(C=x[0], gamma=x[1]))
    return 1.0 - float(cross_val_score(model, _X, _Y, cv=3).mean())


def _box(low: float, high: float, n: int) -> dict[str, FloatRange]:
    return {f"x{i}": FloatRange(low, high) for i in range(n)}


# name: (objective over the parameters in order, space, known optimum)
PROBLEMS: dict[str, tuple[Callable[[Sequence[float]], float], dict[str, FloatRange], float]] = {
    "branin": (branin, {"x0": FloatRange(-5, 10), "x1": FloatRange(0, 15)}, 0.397887),
    "six_hump_camel": (
        six_hump_camel,
        {"x0": FloatRange(-3, 3), "x1": FloatRange(-2, 2)},
        -1.0316284534898774,
    ),
    "himmelblau": (himmelblau, _box(-5, 5, 2), 0.0),
    "rastrigin2": (rastrigin, _box(-5.12, 5.12, 2), 0.0),
    "hartmann6": (hartmann6, _box(0, 1, 6), -3.32237),
    "rosenbrock4": (rosenbrock, _box(-5, 10, 4), 0.0),
    "svc_breast_cancer": (
        svc_error,
        {"C": FloatRange(1e-3, 1e3, log=True), "gamma": FloatRange(1e-5, 1e1, log=True)},
        0.0,
    ),
}


Objective = Callable[[tuple[float, ...]], float]


def _cached(f: Callable[[Sequence[float]], float]) -> Objective:
    """Return ``f`` remembering its values: a point two arms share is evaluated once."""

    @functools.cache
    def cached(x: tuple[float, ...]) -> float:
        return f(x)

    return cached


def _regrets(values: Sequence[float], optimum: float, budgets: Sequence[int]) -> list[float]:
    """Return the regret after each budget: the best of the first N values minus the optimum."""
    return [min(values[:n]) - optimum for n in budgets]


def run_mlwf(
    f: Objective, space: dict[str, FloatRange], method: str, seed: int, n: int
) -> list[float]:
    """Return the values of mlwf's search of ``n`` experiments, in the order planned."""
    spec = HyperparameterTuningSpec(
        hyperparameters=space,
        metric="value",
        direction="minimize",
        method=method,
        n_experiments=n,
        seed=seed,
    )
    result = search(spec, lambda p: {"value": f(tuple(p[k] for k in space))})
    ordered = sorted(result.experiments, key=lambda r: r.index)
    return [r.metrics["value"] for r in ordered]


def _mlwf_round_seed(seed: int, n_recorded: int) -> int:
    """The seed mlwf's planner gave a round before issue 15 (``round_seed``; copied: private)."""
    digest = hashlib.sha256(f"mlwf-tuning:{seed}:{n_recorded}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def run_optuna(
    f: Objective, space: dict[str, FloatRange], seed: int, n: int, *, reseeded: bool
) -> list[float]:
    """Return the values of Optuna's TPE over ``n`` trials (one sampler, or one per trial)."""
    dists = {name: hp.distribution() for name, hp in space.items()}
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    for i in range(n):
        if reseeded:  # mlwf before issue 15: a new sampler every round, seeded from the records
            study.sampler = optuna.samplers.TPESampler(seed=_mlwf_round_seed(seed, i))
        trial = study.ask(dists)
        study.tell(trial, f(tuple(trial.params[k] for k in space)))
    return [t.value for t in study.trials if t.value is not None]


def _bootstrap_ratio(
    candidate: Sequence[float], baseline: Sequence[float], *, paired: bool, seed: int = 0
) -> np.ndarray:
    """Return bootstrap replicates of median(candidate) / median(baseline)."""
    rng = np.random.default_rng(seed)
    c, b = np.asarray(candidate), np.asarray(baseline)
    i = rng.integers(0, len(c), size=(RESAMPLES, len(c)))
    j = i if paired else rng.integers(0, len(b), size=(RESAMPLES, len(b)))
    return np.asarray(np.median(c[i], axis=1) / np.median(b[j], axis=1))


def _interval(replicates: np.ndarray) -> list[float]:
    return [float(np.quantile(replicates, 0.025)), float(np.quantile(replicates, 0.975))]


def _paired(candidate: Sequence[float], baseline: Sequence[float]) -> dict[str, Any]:
    """Paired by seed: ratio of medians with its interval, Wilcoxon, per-seed ratios, rank-biserial."""
    diffs = np.asarray(candidate) - np.asarray(baseline)
    nonzero = diffs[diffs != 0]
    if len(nonzero) == 0:  # identical in every seed: no test has anything to rank
        p, rank_biserial = 1.0, 0.0
    else:
        p = float(wilcoxon(candidate, baseline).pvalue)
        ranks = np.argsort(np.argsort(np.abs(nonzero))) + 1.0
        rank_biserial = float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())
    ratios = [c / b for c, b in zip(candidate, baseline, strict=True) if b > 0]
    return {
        "ratio_of_medians": statistics.median(candidate) / statistics.median(baseline),
        "ratio_ci95": _interval(_bootstrap_ratio(candidate, baseline, paired=True)),
        "identical_seeds": int(np.sum(diffs == 0)),
        "candidate_better_seeds": int(np.sum(diffs < 0)),
        "candidate_worse_seeds": int(np.sum(diffs > 0)),
        "wilcoxon_p": p,
        "median_per_seed_ratio": statistics.median(ratios),
        "rank_biserial": rank_biserial,
    }


def _unpaired(candidate: Sequence[float], baseline: Sequence[float]) -> dict[str, Any]:
    """In distribution: ratio of medians with its interval, Mann-Whitney U, Cliff's delta."""
    c, b = np.asarray(candidate), np.asarray(baseline)
    greater = np.sum(c[:, None] > b[None, :])
    less = np.sum(c[:, None] < b[None, :])
    return {
        "ratio_of_medians": statistics.median(candidate) / statistics.median(baseline),
        "ratio_ci95": _interval(_bootstrap_ratio(candidate, baseline, paired=False)),
        "mannwhitney_p": float(mannwhitneyu(candidate, baseline).pvalue),
        # > 0: the candidate's regret tends to be larger (worse)
        "cliffs_delta": float((greater - less) / (len(c) * len(b))),
    }


def _duel(a: Sequence[float], b: Sequence[float]) -> dict[str, int]:
    wins = sum(x < y for x, y in zip(a, b, strict=True))
    losses = sum(x > y for x, y in zip(a, b, strict=True))
    return {"wins": wins, "losses": losses, "ties": len(a) - wins - losses}


def _geometric_mean_ratio(
    regrets: dict[str, dict[str, dict[int, list[float]]]],
    candidate: str,
    budget: int,
    *,
    paired: bool,
) -> dict[str, Any]:
    """Return the geometric mean over problems of the ratio of medians, with its interval."""
    logs, replicates = [], np.zeros(RESAMPLES)
    for k, runs in enumerate(regrets.values()):
        c, b = runs[candidate][budget], runs["optuna_tpe"][budget]
        logs.append(math.log(statistics.median(c) / statistics.median(b)))
        replicates += np.log(_bootstrap_ratio(c, b, paired=paired, seed=k))
    return {
        "value": math.exp(statistics.mean(logs)),
        "ci95": _interval(np.exp(replicates / len(regrets))),
        "n": len(regrets),
    }


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    env = environment("tuning_quality")
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    regrets: dict[str, dict[str, dict[int, list[float]]]] = {}
    for problem, (raw, space, optimum) in PROBLEMS.items():
        f, last = _cached(raw), BUDGETS[-1]
        arms: dict[str, Callable[[int], list[float]]] = {
            "optuna_tpe": functools.partial(run_optuna, f, space, n=last, reseeded=False),
            "mlwf_tpe": functools.partial(run_mlwf, f, space, "tpe", n=last),
            "reseeded_tpe": functools.partial(run_optuna, f, space, n=last, reseeded=True),
            "mlwf_random": functools.partial(run_mlwf, f, space, "random", n=last),
            "mlwf_gp": functools.partial(run_mlwf, f, space, "gp", n=GP_BUDGET),
        }
        runs: dict[str, dict[int, list[float]]] = {}
        for arm, runner in arms.items():
            budgets = [GP_BUDGET] if arm == "mlwf_gp" else list(BUDGETS)
            t0 = time.perf_counter()
            per_seed = [_regrets(runner(seed=seed), optimum, budgets) for seed in range(SEEDS)]
            seconds[f"{problem}/{arm}"] = time.perf_counter() - t0
            runs[arm] = {n: [r[k] for r in per_seed] for k, n in enumerate(budgets)}
        regrets[problem] = runs

    problems: dict[str, Any] = {}
    estimates: dict[str, dict[str, Any]] = {}
    for problem, runs in regrets.items():
        per_budget: dict[str, Any] = {}
        for n in BUDGETS:
            mlwf, base = runs["mlwf_tpe"][n], runs["optuna_tpe"][n]
            paired, unpaired = _paired(mlwf, base), _unpaired(runs["reseeded_tpe"][n], base)
            per_budget[str(n)] = {
                "median_regret": {
                    arm: statistics.median(v[n]) for arm, v in runs.items() if n in v
                },
                "mlwf_tpe_vs_optuna_tpe": paired,
                "reseeded_tpe_vs_optuna_tpe": unpaired,
                "mlwf_tpe_vs_mlwf_random": _duel(mlwf, runs["mlwf_random"][n]),
            }
            if n in runs["mlwf_gp"]:
                per_budget[str(n)]["mlwf_gp_vs_mlwf_tpe"] = _duel(runs["mlwf_gp"][n], mlwf)
            estimates[f"regret_ratio_{problem}_{n}"] = {
                "value": paired["ratio_of_medians"],
                "ci95": paired["ratio_ci95"],
                "n": SEEDS,
            }
            estimates[f"reseeded_regret_ratio_{problem}_{n}"] = {
                "value": unpaired["ratio_of_medians"],
                "ci95": unpaired["ratio_ci95"],
                "n": SEEDS,
            }
        problems[problem] = per_budget
    for n in BUDGETS:
        estimates[f"regret_ratio_{n}"] = _geometric_mean_ratio(regrets, "mlwf_tpe", n, paired=True)
        estimates[f"reseeded_regret_ratio_{n}"] = _geometric_mean_ratio(
            regrets, "reseeded_tpe", n, paired=False
        )
    # Instant objectives only: the SVC's cache serves mlwf the points Optuna's arm evaluated.
    tpe_time = [
        seconds[f"{p}/mlwf_tpe"] / seconds[f"{p}/optuna_tpe"]
        for p in PROBLEMS
        if p != "svc_breast_cancer"
    ]
    estimates["mlwf_tpe_time_over_optuna_tpe_time"] = estimate(tpe_time)
    wall = time.perf_counter() - started
    identical = sum(
        p[str(n)]["mlwf_tpe_vs_optuna_tpe"]["identical_seeds"]
        for p in problems.values()
        for n in BUDGETS
    )
    total = len(PROBLEMS) * len(BUDGETS) * SEEDS
    ratios = "/".join(f"{estimates[f'regret_ratio_{n}']['value']:.2f}" for n in BUDGETS)
    old = ", ".join(
        f"{estimates[f'reseeded_regret_ratio_{n}']['value']:.2f} "
        f"(CI {estimates[f'reseeded_regret_ratio_{n}']['ci95'][0]:.2f}-"
        f"{estimates[f'reseeded_regret_ratio_{n}']['ci95'][1]:.2f})"
        for n in BUDGETS
    )
    write_result(
        "tuning_quality",
        description=(
            "median regret after 20, 30 and 60 experiments over seeds, 7 problems: mlwf's TPE "
            "search vs Optuna's study.optimize with one TPESampler (paired by seed), and the "
            "per-round re-seeding mlwf used before issue 15 vs the same baseline (in distribution)"
        ),
        estimates=estimates,
        headline="regret_ratio_30",
        meaning=(
            "geometric mean over problems of median regret of mlwf's TPE / median regret of "
            "Optuna's TPE (one sampler, same seeds) after 30 experiments; lower is better for mlwf"
        ),
        samples={
            "regret": {
                p: {a: {str(n): v for n, v in r.items()} for a, r in runs.items()}
                for p, runs in regrets.items()
            }
        },
        environment=env,
        details={
            "problems": problems,
            "seeds": SEEDS,
            "budgets": list(BUDGETS),
            "gp_budget": GP_BUDGET,
            "statistic": "median over seeds of (best value among the first N experiments - known optimum)",
            "seconds": seconds,
            "wall_s": wall,
            "versions": {name: version(name) for name in ("optuna", "scikit-learn", "scipy")},
        },
        summary=(
            f"tuning_quality: mlwf TPE / Optuna TPE median regret {ratios} after "
            f"{'/'.join(map(str, BUDGETS))} experiments (identical seed by seed in {identical} of "
            f"{total} runs); per-round re-seeding (before issue 15): {old}; {SEEDS} seeds, "
            f"{wall:.0f} s"
        ),
    )


if __name__ == "__main__":
    main()
