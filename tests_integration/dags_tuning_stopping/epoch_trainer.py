"""A trainer that reports an accuracy per epoch, then fits the reference model (integration test).

The per-epoch values stand in for a real learning curve: ``min(C, 1) * (epoch + 1) / EPOCHS``,
so a small ``C`` gives a curve below the others at every epoch. The model itself is the
reference trainer's, so validation scores a real model.
"""

from __future__ import annotations

import time
from typing import Any

from mlwf_operators.trainers import report_progress
from mlwf_operators.trainers.sklearn_reference import train as reference_train

EPOCHS = 5


def train(params: dict[str, Any], data: str, output_dir: str) -> dict[str, float]:
    """Report ``accuracy`` per epoch (one line each), then train the reference model."""
    level = min(float(params["C"]), 1.0)
    for epoch in range(EPOCHS):
        time.sleep(0.4)
        report_progress(epoch, {"accuracy": level * (epoch + 1) / EPOCHS})
    return reference_train(params, data, output_dir)
