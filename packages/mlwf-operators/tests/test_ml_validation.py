"""Model validation: the default evaluator on the real held-out split, thresholds with direction."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlwf_operators.operators.validation import (
    ModelValidationError,
    ValidateModelOperator,
    check_thresholds,
)


@pytest.fixture(scope="module")
def model_uri(trained_model_dir: Path) -> str:
    return trained_model_dir.as_uri()


def test_met_thresholds_return_the_held_out_metrics(model_uri: str) -> None:
    """A good model passes and the operator returns accuracy, f1 and log loss on the test split."""
    op = ValidateModelOperator(
        task_id="v", model_uri=model_uri, thresholds={"accuracy": 0.9, "log_loss": {"max": 0.5}}
    )
    metrics = op.execute({})  # type: ignore[arg-type]
    assert metrics["accuracy"] > 0.9 and set(metrics) == {"accuracy", "f1_macro", "log_loss"}


def test_missed_threshold_names_metric_value_and_bound(model_uri: str) -> None:
    """A missed minimum fails with the metric, its value and the threshold."""
    op = ValidateModelOperator(task_id="v", model_uri=model_uri, thresholds={"accuracy": 0.999})
    with pytest.raises(
        ModelValidationError,
        match=r"failed validation on sklearn://breast_cancer: accuracy = 0\.\d{4} is below the minimum 0\.999",
    ):
        op.execute({})  # type: ignore[arg-type]


def test_missing_model_is_named(tmp_path: Path) -> None:
    """Validating a model URI that does not exist fails naming the URI."""
    missing = (tmp_path / "gone").as_uri()
    op = ValidateModelOperator(task_id="v", model_uri=missing, thresholds={"accuracy": 0.5})
    with pytest.raises(Exception, match=rf"no model artifact at '{missing}'"):
        op.execute({})  # type: ignore[arg-type]


def test_threshold_directions_and_unknown_metrics() -> None:
    """Maximums, minimums and thresholds on metrics the evaluator did not return are each reported."""
    misses = check_thresholds(
        {"accuracy": 0.8, "log_loss": 0.7},
        {"accuracy": {"min": 0.9, "max": 1.0}, "log_loss": {"max": 0.5}, "auc": 0.9},
    )
    assert misses == [
        "accuracy = 0.8000 is below the minimum 0.9",
        "log_loss = 0.7000 is above the maximum 0.5",
        "metric 'auc' has a threshold but the evaluator returned only ['accuracy', 'log_loss']",
    ]
    assert check_thresholds({"accuracy": 0.95}, {"accuracy": 0.9}) == []


@pytest.mark.parametrize(
    "thresholds", [{}, {"accuracy": "high"}, {"accuracy": {"above": 0.9}}, {"accuracy": True}]
)
def test_malformed_thresholds_are_refused_at_definition(thresholds: dict[str, object]) -> None:
    """Malformed thresholds are refused when the DAG is defined, naming the task."""
    with pytest.raises(ValueError, match=r"task 'v': threshold"):
        ValidateModelOperator(task_id="v", model_uri="file:///m", thresholds=thresholds)  # type: ignore[arg-type]
