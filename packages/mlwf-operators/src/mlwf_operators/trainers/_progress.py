"""Progress lines: how a trainer in its child process reports metrics while it trains.

A trainer calls ``report_progress(step, metrics)`` (an epoch, a checkpoint); it prints one line,
``mlwf-progress {"step": 3, "metrics": {"val_loss": 0.41}}``, which the operator reads from the
streamed log like any other line and hands to ``TrainModelOperator.on_progress``. A plain line
is the whole protocol, so a trainer in any language can print it too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

#: The start of a progress line in a trainer's output.
PROGRESS_PREFIX = "mlwf-progress "


def report_progress(step: int, metrics: Mapping[str, float]) -> None:
    """Report ``metrics`` at ``step`` to the operator running this trainer (one line on stdout)."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"a progress step must be an int >= 0; got {step!r}")
    values: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"progress metric {name!r} must be a number; got {value!r}")
        values[str(name)] = float(value)
    line = json.dumps({"step": step, "metrics": values}, allow_nan=True)
    print(PROGRESS_PREFIX + line, flush=True)


def parse_progress(line: str) -> tuple[int, dict[str, float]] | None:
    """Return ``(step, metrics)`` of a progress line, or None for any other line."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        data = json.loads(line[len(PROGRESS_PREFIX) :])
        step, metrics = data["step"], data["metrics"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(step, bool) or not isinstance(step, int) or not isinstance(metrics, dict):
        return None
    values = {
        str(k): float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    return step, values
