"""Picklable objectives for the process-pool tests (a process pool cannot run closures)."""

from __future__ import annotations

from typing import Any


def quadratic(params: dict[str, Any]) -> dict[str, float]:
    """Return the squared distance of x to 0.3."""
    return {"loss": (params["x"] - 0.3) ** 2}
