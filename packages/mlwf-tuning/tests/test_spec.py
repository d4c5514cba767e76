"""HyperparameterTuningSpec: invalid specs are rejected when built, with a message naming the fault."""

from __future__ import annotations

from typing import Any

import pytest
from mlwf_tuning import Categorical, FloatRange, HyperparameterTuningSpec, IntRange, MedianStopping
from pydantic import ValidationError

X = {"x": FloatRange(0, 1)}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Categorical([]), "Categorical needs at least one choice"),
        (lambda: Categorical(["a", "a"]), "choices must be distinct"),
        (lambda: FloatRange(1, 0), "FloatRange needs low < high; got low=1.0, high=0.0"),
        (lambda: FloatRange(2, 2), "FloatRange needs low < high"),
        (lambda: IntRange(5, 1), "IntRange needs low < high; got low=5, high=1"),
        (lambda: FloatRange(0, 1, log=True), "FloatRange with log=True needs low > 0; got low=0.0"),
        (lambda: IntRange(-1, 10, log=True), "IntRange with log=True needs low > 0"),
        (lambda: FloatRange(0, float("inf")), "bounds must be finite"),
        (lambda: IntRange(0, 10, step=3), "multiple of step"),
        (lambda: FloatRange(0.1, 1, log=True, step=0.1), "cannot combine log=True with step"),
    ],
)
def test_invalid_hyperparameter_is_rejected_with_its_fault(build: Any, message: str) -> None:
    """Each malformed hyperparameter raises a ValidationError whose text says what is wrong."""
    with pytest.raises(ValidationError, match=message):
        build()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hyperparameters": {}}, "at least one hyperparameter"),
        ({"metric": " "}, "metric must name the metric"),
        ({"parallelism": 0}, r"parallelism\n.*greater than or equal to 1"),
        ({"n_experiments": 0}, r"n_experiments\n.*greater than or equal to 1"),
        ({"max_failed_experiments": -1}, "max_failed_experiments"),
        ({"direction": "up"}, r"direction\n.*'minimize' or 'maximize'"),
        (
            {"method": "annealing"},
            "unknown tuning method 'annealing'; known methods: .*grid.*random.*tpe",
        ),
        (
            {"method": "grid", "n_experiments": None},
            "hyperparameter 'x': a grid search needs every FloatRange to have a step",
        ),
        ({"n_experiments": None}, "n_experiments is required for method 'tpe'"),
        ({"time_budget_s": 0}, "time_budget_s"),
        ({"early_stopping": {"min_experiments": 0}}, "min_experiments"),
        (
            {"hyperparameters": {"x": {"kind": "float", "low": 0, "high": 1, "log": True}}},
            r"hyperparameters\.x\.float",
        ),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_spec_is_rejected_with_its_fault(fields: dict[str, Any], message: str) -> None:
    """A spec with a bad field raises a ValidationError naming the field or the problem."""
    base: dict[str, Any] = {"hyperparameters": X, "metric": "loss", "n_experiments": 10}
    with pytest.raises(ValidationError, match=message):
        HyperparameterTuningSpec(**{**base, **fields})


def test_grid_larger_than_its_points_is_rejected() -> None:
    """A grid search asking for more experiments than grid points names both numbers."""
    with pytest.raises(ValidationError, match="n_experiments=7 exceeds the grid's 6 points"):
        HyperparameterTuningSpec(
            hyperparameters={"a": IntRange(1, 3), "b": Categorical([True, False])},
            metric="m",
            method="grid",
            n_experiments=7,
        )


def test_spec_round_trips_through_json() -> None:
    """A spec dumped to JSON validates back to an equal spec, hyperparameter kinds included."""
    spec = HyperparameterTuningSpec(
        hyperparameters={
            "lr": FloatRange(1e-4, 1e-1, log=True),
            "depth": IntRange(2, 10, step=2),
            "kernel": Categorical(["rbf", "linear", None]),
        },
        metric="accuracy",
        direction="maximize",
        method="random",
        n_experiments=20,
        parallelism=4,
        early_stopping=MedianStopping(min_experiments=3, warmup_steps=2),
        time_budget_s=60,
    )
    again = HyperparameterTuningSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert isinstance(again.hyperparameters["depth"], IntRange)


def test_plan_json_ignores_stop_settings_only() -> None:
    """Changing the failure tolerance or time budget keeps the plan (and default tuning id); changing the seed does not."""
    spec = HyperparameterTuningSpec(hyperparameters=X, metric="loss", n_experiments=5)
    tolerant = spec.model_copy(update={"max_failed_experiments": 3, "time_budget_s": 9.0})
    reseeded = spec.model_copy(update={"seed": 1})
    assert tolerant.fingerprint() == spec.fingerprint()
    assert reseeded.fingerprint() != spec.fingerprint()


def test_grid_default_runs_the_full_grid() -> None:
    """A grid spec without n_experiments runs exactly as many experiments as grid points."""
    spec = HyperparameterTuningSpec(
        hyperparameters={"a": IntRange(0, 4, step=2), "f": FloatRange(0, 1, step=0.25)},
        metric="m",
        method="grid",
    )
    assert spec.total_experiments() == 3 * 5
