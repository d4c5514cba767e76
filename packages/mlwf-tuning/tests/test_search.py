"""Local search: runs, records, tolerates failures, stops early, and resumes without repeating or losing work."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _objectives import quadratic
from mlwf_tuning import (
    Categorical,
    ExperimentState,
    FloatRange,
    HyperparameterTuningSpec,
    IntRange,
    MedianStopping,
    Reporter,
    SqlExperimentStore,
    TooManyFailedExperimentsError,
    search,
)

X = {"x": FloatRange(0, 1)}


def _spec(**fields: Any) -> HyperparameterTuningSpec:
    base: dict[str, Any] = {"hyperparameters": X, "metric": "loss", "n_experiments": 12}
    return HyperparameterTuningSpec(**{**base, **fields})


class InterruptAfter:
    """An objective that counts its calls and raises KeyboardInterrupt on call number ``k + 1``."""

    def __init__(self, k: int | None) -> None:
        self.k = k
        self.calls: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, params: dict[str, Any]) -> dict[str, float]:
        with self.lock:
            if self.k is not None and len(self.calls) >= self.k:
                raise KeyboardInterrupt
            self.calls.append(params["x"])
        return {"loss": (params["x"] - 0.3) ** 2}


@pytest.mark.parametrize(("method", "parallelism"), [("tpe", 1), ("tpe", 3), ("random", 4)])
def test_interrupted_search_resumes_without_repeating_or_losing(
    tmp_path: Path, method: str, parallelism: int
) -> None:
    """A search stopped by KeyboardInterrupt after 5 experiments resumes to exactly n_experiments, each finished one run once."""
    spec = _spec(method=method, parallelism=parallelism, n_experiments=12)
    store = SqlExperimentStore(f"sqlite:///{tmp_path}/resume.db")
    first = InterruptAfter(5)
    with pytest.raises(KeyboardInterrupt):
        search(spec, first, store, tuning_id="resume")
    finished_before = {r.index: r for r in store.load("resume") if r.state.finished}
    assert len(finished_before) == 5

    second = InterruptAfter(None)
    result = search(spec, second, store, tuning_id="resume")
    assert len(result.experiments) == 12
    assert all(r.state == ExperimentState.SUCCEEDED for r in result.experiments)
    assert [r.index for r in result.experiments] == list(range(12))
    assert len(first.calls) + len(second.calls) == 12  # nothing repeated
    for index, record in finished_before.items():  # nothing lost or rewritten
        assert result.experiments[index] == record


def test_resumed_search_plans_what_an_uninterrupted_one_plans(tmp_path: Path) -> None:
    """Interrupting and resuming a sequential Bayesian search yields the same experiments as running it through."""
    spec = _spec(method="tpe", n_experiments=15, seed=3)
    through = search(spec, InterruptAfter(None))
    store = SqlExperimentStore(f"sqlite:///{tmp_path}/r.db")
    with pytest.raises(KeyboardInterrupt):
        search(spec, InterruptAfter(11), store)
    resumed = search(spec, InterruptAfter(None), store)
    assert [r.params for r in resumed.experiments] == [r.params for r in through.experiments]


def test_search_finds_a_good_point() -> None:
    """Bayesian search of a 1-d quadratic gets within 0.05 of its minimum at x=0.3 in 30 experiments."""
    result = search(_spec(n_experiments=30, seed=0), lambda p: {"loss": (p["x"] - 0.3) ** 2})
    assert result.best_params is not None and abs(result.best_params["x"] - 0.3) < 0.05
    assert result.best_value == min(r.metrics["loss"] for r in result.experiments)


def test_failures_up_to_the_limit_are_tolerated() -> None:
    """Experiments that raise are recorded as failed with their error, and the search completes while within the limit."""

    def objective(p: dict[str, Any]) -> dict[str, float]:
        if p["x"] > 0.7:
            raise RuntimeError(f"diverged at x={p['x']:.2f}")
        return {"loss": p["x"]}

    spec = _spec(
        method="grid",
        hyperparameters={"x": FloatRange(0, 1, step=0.1)},
        n_experiments=None,
        max_failed_experiments=3,
    )
    result = search(spec, objective)
    failed = [r for r in result.experiments if r.state == ExperimentState.FAILED]
    assert len(failed) == 3 and all(
        "RuntimeError: diverged at x=" in (r.error or "") for r in failed
    )
    assert result.best_value == 0.0


def test_too_many_failures_stop_the_search_with_a_clear_error() -> None:
    """One failure more than tolerated raises TooManyFailedExperimentsError naming the counts and the last error."""
    spec = _spec(max_failed_experiments=1, n_experiments=10)
    with pytest.raises(
        TooManyFailedExperimentsError,
        match=r"2 experiments failed, but the spec tolerates 1 .*last error: ValueError: bad x",
    ):
        search(spec, lambda p: (_ for _ in ()).throw(ValueError("bad x")))


def test_a_stopped_tuning_resumes_with_a_larger_tolerance() -> None:
    """After TooManyFailedExperimentsError, the same store resumes with a raised limit and keeps the failed records."""
    calls = Counter[str]()

    def flaky(p: dict[str, Any]) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return {"loss": p["x"]}

    from mlwf_tuning import InMemoryExperimentStore

    store = InMemoryExperimentStore()
    with pytest.raises(TooManyFailedExperimentsError):
        search(_spec(n_experiments=4), flaky, store)
    result = search(_spec(n_experiments=4, max_failed_experiments=1), flaky, store)
    assert [r.state.value for r in result.experiments] == [
        "failed",
        "succeeded",
        "succeeded",
        "succeeded",
    ]


@pytest.mark.parametrize(
    ("returned", "error"),
    [
        ({"acc": 1.0}, "KeyError: \"the objective returned metrics ['acc'] without 'loss'"),
        ([1.0], "TypeError: the objective returned list; expected a dict of metrics"),
        (
            {"loss": float("nan")},
            "ValueError: the objective returned loss=nan, which is not finite",
        ),
    ],
)
def test_bad_objective_results_fail_the_experiment_with_a_reason(returned: Any, error: str) -> None:
    """An objective returning no usable metric fails its experiment with a message saying why."""
    with pytest.raises(TooManyFailedExperimentsError) as info:
        search(_spec(n_experiments=2), lambda p: returned)
    assert error in str(info.value)


def test_median_stopping_prunes_bad_curves_in_search() -> None:
    """With median stopping, experiments whose curve is worse than the finished median are pruned and recorded as such."""

    def curve(p: dict[str, Any], reporter: Reporter) -> dict[str, float]:
        for step in range(1, 6):
            reporter.report(step, p["x"] * step)  # lower x: better at every step
        return {"loss": p["x"] * 5}

    spec = _spec(
        method="random",
        n_experiments=30,
        early_stopping=MedianStopping(min_experiments=3, warmup_steps=1),
    )
    result = search(spec, curve)
    pruned = [r for r in result.experiments if r.state == ExperimentState.PRUNED]
    assert pruned, "some experiments should be stopped"
    assert all(r.intermediate and "loss" not in r.metrics for r in pruned)
    best = result.best
    assert best is not None and all(best.params["x"] <= r.params["x"] for r in pruned)


def test_time_budget_stops_planning_new_waves() -> None:
    """A search over its time budget starts no further experiments and says why it stopped."""

    def slow(p: dict[str, Any]) -> dict[str, float]:
        time.sleep(0.1)
        return {"loss": p["x"]}

    result = search(_spec(n_experiments=50, time_budget_s=0.35), slow)
    assert 2 <= len([r for r in result.experiments if r.state.finished]) <= 6
    assert result.stopped_reason is not None and "time budget" in result.stopped_reason


def test_parallel_threads_run_concurrently() -> None:
    """With parallelism 4 on threads, four experiments of a wave are inside the objective at once."""
    barrier = threading.Barrier(4, timeout=10)

    def objective(p: dict[str, Any]) -> dict[str, float]:
        barrier.wait()  # raises BrokenBarrierError (a failed experiment) unless 4 run together
        return {"loss": p["x"]}

    result = search(_spec(method="random", n_experiments=8, parallelism=4), objective)
    assert result.count(ExperimentState.SUCCEEDED) == 8


def test_process_pool_runs_a_picklable_objective() -> None:
    """pool='process' runs every experiment of the tuning in worker processes."""
    result = search(
        _spec(method="random", n_experiments=6, parallelism=2), quadratic, pool="process"
    )
    assert result.count(ExperimentState.SUCCEEDED) == 6


def test_unknown_pool_is_rejected() -> None:
    """A pool other than thread or process raises a ValueError naming it."""
    with pytest.raises(ValueError, match="pool must be 'thread' or 'process'; got 'gpu'"):
        search(_spec(), quadratic, pool="gpu")  # type: ignore[arg-type]


def test_tunes_a_real_scikit_learn_model() -> None:
    """A small grid over a decision tree's depth and criterion on iris finds a cross-validated accuracy above 0.9."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)

    def accuracy(p: dict[str, Any]) -> dict[str, float]:
        model = DecisionTreeClassifier(
            max_depth=p["depth"], criterion=p["criterion"], random_state=0
        )
        return {"accuracy": float(cross_val_score(model, x, y, cv=3).mean())}

    spec = HyperparameterTuningSpec(
        hyperparameters={"depth": IntRange(1, 4), "criterion": Categorical(["gini", "entropy"])},
        metric="accuracy",
        direction="maximize",
        method="grid",
    )
    result = search(spec, accuracy)
    assert len(result.experiments) == 8
    assert result.best_value is not None and result.best_value > 0.9
    assert result.best_params is not None and result.best_params["depth"] > 1
