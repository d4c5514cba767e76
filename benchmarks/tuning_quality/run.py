"""mlwf-tuning search quality: Bayesian (TPE, GP) vs random search, and mlwf's search vs Optuna directly.

Problems: Branin (2-d), Hartmann-6, Rosenbrock-4 (N=40 experiments each) and a real model, an
RBF SVC on scikit-learn's bundled breast-cancer data (objective: 3-fold cross-validated error
rate, N=20). Each method runs with SEEDS seeds at the same budget; the statistic is the median
over seeds of the best value after N experiments, reported as regret (best - known optimum; for
the SVC, the error rate). Baseline in the same run: Optuna used directly (``study.optimize``)
with the same sampler and seed on the same objective; mlwf's search (sequential, parallelism=1)
re-seeds its sampler each round from (seed, experiments so far) so plans are rebuildable from
records, so it is compared in distribution (medians and a two-sided Mann-Whitney U test).
Method gp (mlwf's own scikit-learn Gaussian-process sampler, which Optuna does not ship) runs
through mlwf's search only, on the same problems, seeds and budgets.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from mlwf_tuning import FloatRange, HyperparameterTuningSpec, search
from scipy.stats import mannwhitneyu
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

SEEDS = 20
RESULT = Path(__file__).resolve().parents[1] / "results" / "tuning_quality.json"

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


def branin(p: dict[str, Any]) -> float:
    x, y = p["x0"], p["x1"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10


def hartmann6(p: dict[str, Any]) -> float:
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(-np.sum(_ALPHA * np.exp(-np.sum(_A * (x - _P) ** 2, axis=1))))


def rosenbrock4(p: dict[str, Any]) -> float:
    x = [p[f"x{i}"] for i in range(4)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3))


_X, _Y = load_breast_cancer(return_X_y=True)


def svc_error(p: dict[str, Any]) -> float:
    model = make_pipeline(StandardScaler(), SVC(C=p["C"], gamma=p["gamma"]))
    return 1.0 - float(cross_val_score(model, _X, _Y, cv=3).mean())


# name: (objective, space, known optimum, budget)
PROBLEMS: dict[str, tuple[Callable[[dict[str, Any]], float], dict[str, FloatRange], float, int]] = {
    "branin": (branin, {"x0": FloatRange(-5, 10), "x1": FloatRange(0, 15)}, 0.397887, 40),
    "hartmann6": (hartmann6, {f"x{i}": FloatRange(0, 1) for i in range(6)}, -3.32237, 40),
    "rosenbrock4": (rosenbrock4, {f"x{i}": FloatRange(-5, 10) for i in range(4)}, 0.0, 40),
    "svc_breast_cancer": (
        svc_error,
        {"C": FloatRange(1e-3, 1e3, log=True), "gamma": FloatRange(1e-5, 1e1, log=True)},
        0.0,
        20,
    ),
}


def _sampler(method: str, seed: int) -> optuna.samplers.BaseSampler:
    return (
        optuna.samplers.TPESampler(seed=seed)
        if method == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )


def run_mlwf(problem: str, method: str, seed: int) -> float:
    f, space, _, n = PROBLEMS[problem]
    spec = HyperparameterTuningSpec(
        hyperparameters=space,
        metric="value",
        direction="minimize",
        method=method,
        n_experiments=n,
        seed=seed,
    )
    result = search(spec, lambda p: {"value": f(p)})
    assert result.best_value is not None
    return result.best_value


def run_optuna(problem: str, method: str, seed: int) -> float:
    f, space, _, n = PROBLEMS[problem]
    dists = {name: hp.distribution() for name, hp in space.items()}

    def objective(trial: optuna.Trial) -> float:
        return f({name: trial._suggest(name, d) for name, d in dists.items()})

    study = optuna.create_study(direction="minimize", sampler=_sampler(method, seed))
    study.optimize(objective, n_trials=n)
    return study.best_value


def _duel(a: list[float], b: list[float]) -> dict[str, int]:
    wins = sum(x < y for x, y in zip(a, b, strict=True))
    losses = sum(x > y for x, y in zip(a, b, strict=True))
    return {"wins": wins, "losses": losses, "ties": len(a) - wins - losses}


def _geometric_mean_ratio(problems: dict[str, Any], candidate: str, baseline: str) -> float:
    ratios = [
        p["median_regret"][candidate] / p["median_regret"][baseline]
        for p in problems.values()
        if p["median_regret"][baseline] > 0
    ]
    return math.exp(statistics.mean(math.log(max(r, 1e-12)) for r in ratios))


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    started = time.perf_counter()
    problems: dict[str, Any] = {}
    for problem, (_, _, optimum, n) in PROBLEMS.items():
        runs: dict[str, list[float]] = {}
        seconds: dict[str, float] = {}
        for label, runner, method in [
            ("mlwf_tpe", run_mlwf, "tpe"),
            ("mlwf_random", run_mlwf, "random"),
            ("mlwf_gp", run_mlwf, "gp"),
            ("optuna_tpe", run_optuna, "tpe"),
            ("optuna_random", run_optuna, "random"),
        ]:
            t0 = time.perf_counter()
            runs[label] = [runner(problem, method, seed) - optimum for seed in range(SEEDS)]
            seconds[label] = time.perf_counter() - t0
        problems[problem] = {
            "budget": n,
            "seeds": SEEDS,
            "median_regret": {k: statistics.median(v) for k, v in runs.items()},
            "regret_per_seed": runs,
            "tpe_vs_random_per_seed": _duel(runs["mlwf_tpe"], runs["mlwf_random"]),
            "gp_vs_random_per_seed": _duel(runs["mlwf_gp"], runs["mlwf_random"]),
            "gp_vs_tpe_per_seed": _duel(runs["mlwf_gp"], runs["mlwf_tpe"]),
            # Two-sided; 8 such tests per run, so one p below 0.05 is expected by chance now and then.
            "mlwf_vs_optuna_mannwhitney_p": {
                m: float(mannwhitneyu(runs[f"mlwf_{m}"], runs[f"optuna_{m}"]).pvalue)
                for m in ("tpe", "random")
            },
            "seconds_total": seconds,
        }
    ratio = _geometric_mean_ratio(problems, "mlwf_tpe", "mlwf_random")
    overhead = statistics.median(
        p["seconds_total"]["mlwf_tpe"] / p["seconds_total"]["optuna_tpe"] for p in problems.values()
    )
    result = {
        "benchmark": "tuning_quality",
        "description": (
            "median regret after N experiments over seeds: mlwf search with TPE (and with GP) vs "
            "with random sampling, and TPE and random each vs Optuna used directly with the same "
            "sampler and seeds (same run)"
        ),
        "measurements": {
            "problems": problems,
            "repetitions": SEEDS,
            "statistic": "median over seeds of (best value after N experiments - known optimum)",
            "mlwf_tpe_time_over_optuna_tpe_time_median": overhead,
            "gp_over_random_ratio": _geometric_mean_ratio(problems, "mlwf_gp", "mlwf_random"),
            "gp_over_tpe_ratio": _geometric_mean_ratio(problems, "mlwf_gp", "mlwf_tpe"),
            "wall_s": time.perf_counter() - started,
        },
        "ratio": ratio,
        "ratio_meaning": (
            "geometric mean over problems of median regret of TPE / median regret of random "
            "(both through mlwf search); lower is better for TPE"
        ),
        "environment": {
            "python": platform.python_version(),
            "optuna": version("optuna"),
            "scikit-learn": version("scikit-learn"),
            "mlwf-tuning": version("mlwf-tuning"),
            "cpus": os.cpu_count(),
        },
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    summary = ", ".join(
        f"{name} {p['median_regret']['mlwf_tpe']:.3g} vs {p['median_regret']['mlwf_random']:.3g} "
        f"(optuna tpe {p['median_regret']['optuna_tpe']:.3g}, gp {p['median_regret']['mlwf_gp']:.3g})"
        for name, p in problems.items()
    )
    print(
        f"tuning_quality: median regret TPE vs random ({SEEDS} seeds): {summary}; ratio {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
