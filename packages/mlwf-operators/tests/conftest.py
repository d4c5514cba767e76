"""Fixtures shared by the operator tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlwf_operators.trainers import run_trainer


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory written once per session by the reference scikit-learn trainer (read-only for tests)."""
    out = tmp_path_factory.mktemp("model") / "model"
    run_trainer(
        "mlwf_operators.trainers.sklearn_reference",
        {"C": 1.0},
        "sklearn://breast_cancer",
        out,
        timeout=120,
        log_line=lambda _: None,
    )
    return out
