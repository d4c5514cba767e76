"""Planning: every method plans valid experiments; Bayesian plans are conditioned on recorded history."""

from __future__ import annotations

import itertools
import statistics
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
    UnknownTuningMethodError,
    available_methods,
    plan,
    rebuild_study,
    register_method,
    resolve_method,
)

SPACE = {
    "lr": FloatRange(1e-4, 1e-1, log=True),
    "depth": IntRange(2, 10, step=2),
    "units": IntRange(8, 512, log=True),
    "kernel": Categorical(["rbf", "linear", 3]),
}


def _spec(method: str, **extra: Any) -> HyperparameterTuningSpec:
    return HyperparameterTuningSpec(
        hyperparameters=SPACE, metric="loss", method=method, n_experiments=12, **extra
    )


def _valid(params: dict[str, Any]) -> bool:
    return (
        1e-4 <= params["lr"] <= 1e-1
        and params["depth"] in (2, 4, 6, 8, 10)
        and isinstance(params["units"], int)
        and 8 <= params["units"] <= 512
        and params["kernel"] in ("rbf", "linear", 3)
    )


def _finish(records: list[ExperimentRecord], loss: Any) -> list[ExperimentRecord]:
    return [
        r.evolve(state=ExperimentState.SUCCEEDED, metrics={"loss": float(loss(r.params))})
        for r in records
    ]


@pytest.mark.parametrize("method", ["random", "tpe", "bayesian", "gp"])
def test_each_method_plans_valid_params(method: str) -> None:
    """Random and Bayesian methods plan only hyperparameters inside the declared space, over several rounds."""
    spec = _spec(method, parallelism=3)
    records: list[ExperimentRecord] = []
    while new := plan(spec, records):
        assert all(_valid(r.params) for r in new), [r.params for r in new]
        records += _finish(new, lambda p: p["lr"])
    assert [r.index for r in records] == list(range(12))


def test_upfront_methods_plan_everything_at_once() -> None:
    """Random search plans all of its experiments in the first call; Bayesian search one round of parallelism."""
    assert len(plan(_spec("random", parallelism=2), [])) == 12
    assert len(plan(_spec("tpe", parallelism=2), [])) == 2


def test_grid_enumerates_every_point_exactly_once() -> None:
    """A grid search plans each combination of the grid exactly once."""
    spec = HyperparameterTuningSpec(
        hyperparameters={
            "a": IntRange(1, 3),
            "b": Categorical(["x", "y"]),
            "c": FloatRange(0.0, 0.5, step=0.25),
        },
        metric="m",
        method="grid",
    )
    planned = plan(spec, [])
    got = sorted((r.params["a"], r.params["b"], r.params["c"]) for r in planned)
    assert got == sorted(itertools.product([1, 2, 3], ["x", "y"], [0.0, 0.25, 0.5]))
    assert plan(spec, planned) == []


def test_plan_fills_gaps_of_an_upfront_plan_identically() -> None:
    """Replanning with part of an up-front plan recorded returns exactly the missing experiments, unchanged."""
    spec = _spec("random")
    full = plan(spec, [])
    assert plan(spec, full[:5]) == full[5:]


def test_rebuilt_plans_are_deterministic() -> None:
    """The same records always give the same next Bayesian round, so a resumed tuning plans what an uninterrupted one would."""
    spec = _spec("tpe", parallelism=2)
    records: list[ExperimentRecord] = []
    for _ in range(4):
        records += _finish(plan(spec, records), lambda p: abs(p["lr"] - 0.01))
    assert plan(spec, records) == plan(spec, list(records))
    assert plan(spec, records) != plan(spec.model_copy(update={"seed": 7}), records)


def test_bayesian_round_uses_the_recorded_history() -> None:
    """After 30 recorded results with a minimum near x=0.9, TPE's next suggestions sit nearer 0.9 than random's."""
    space = {"x": FloatRange(0, 1)}

    def next_x(method: str, seed: int) -> list[float]:
        spec = HyperparameterTuningSpec(
            hyperparameters=space,
            metric="loss",
            method=method,
            n_experiments=40,
            parallelism=10,
            seed=seed,
        )
        history = [ExperimentRecord(i, {"x": i / 29}) for i in range(30)]
        history = _finish(history, lambda p: (p["x"] - 0.9) ** 2)
        return [r.params["x"] for r in plan(spec, history)]

    tpe = [abs(x - 0.9) for seed in range(3) for x in next_x("tpe", seed)]
    rnd = [abs(x - 0.9) for seed in range(3) for x in next_x("random", seed)]
    assert statistics.median(tpe) < 0.1 < statistics.median(rnd)


def test_rebuild_study_maps_every_state() -> None:
    """Recorded experiments become trials with matching states, values and intermediate values."""
    spec = _spec("tpe")
    p = {"lr": 0.01, "depth": 4, "units": 16, "kernel": "rbf"}
    records = [
        ExperimentRecord(0, p, ExperimentState.SUCCEEDED, metrics={"loss": 0.5}),
        ExperimentRecord(1, p, ExperimentState.FAILED, error="boom"),
        ExperimentRecord(2, p, ExperimentState.PRUNED, intermediate={1: 0.9, 2: 0.8}),
        ExperimentRecord(3, p, ExperimentState.PLANNED),
    ]
    trials = rebuild_study(spec, records).trials
    states = optuna.trial.TrialState
    assert [t.state for t in trials] == [
        states.COMPLETE,
        states.FAIL,
        states.PRUNED,
        states.RUNNING,
    ]
    assert trials[0].value == 0.5
    assert trials[2].intermediate_values == {1: 0.9, 2: 0.8}


@pytest.mark.filterwarnings(
    "ignore::optuna.exceptions.ExperimentalWarning"
)  # QMCSampler is experimental
def test_plugged_in_method_is_resolved_and_used() -> None:
    """A method registered by name (as an entry point would) plans with its own sampler."""
    register_method(
        SearchMethod(
            "qmc-test", lambda spec, seed: optuna.samplers.QMCSampler(seed=seed), plans_upfront=True
        )
    )
    assert "qmc-test" in available_methods()
    planned = plan(_spec("qmc-test"), [])
    assert len(planned) == 12 and all(_valid(r.params) for r in planned)


def test_unknown_method_lists_the_known_ones() -> None:
    """Resolving an unregistered method raises UnknownTuningMethodError naming it and the known methods."""
    with pytest.raises(
        UnknownTuningMethodError, match=r"unknown tuning method 'nope'; known methods: .*tpe"
    ):
        resolve_method("nope")


def test_builtin_methods_are_registered_as_entry_points() -> None:
    """The built-in methods are declared in the mlwf.tuning.methods entry point group."""
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="mlwf.tuning.methods")}
    assert {"grid", "random", "tpe", "bayesian", "gp"} <= names


def test_builtin_methods_resolve_without_scanning_installed_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 10 item 14: resolving a built-in method (done while a DAG file's spec is validated) reads no entry points."""
    import mlwf_tuning._spec as methods

    scans: list[str] = []

    def counting_entry_points(**kwargs: Any) -> Any:
        scans.append(str(kwargs))
        return []

    monkeypatch.setattr(methods, "entry_points", counting_entry_points)
    for name in ("grid", "random", "tpe", "bayesian", "gp"):
        assert resolve_method(name).name in {name, "tpe"}
    assert scans == []
