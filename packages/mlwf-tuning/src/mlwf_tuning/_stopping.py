"""Early stopping: the median-stopping rule for experiments that report intermediate values."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Mapping, Sequence

from mlwf_tuning._errors import ExperimentPrunedError
from mlwf_tuning._spec import Direction, MedianStopping


def should_stop(
    rule: MedianStopping,
    direction: Direction,
    finished_curves: Sequence[Mapping[int, float]],
    step: int,
    value: float,
) -> bool:
    """Return whether an experiment reporting ``value`` at ``step`` is to be stopped.

    ``finished_curves`` are the intermediate values (step -> value) of finished experiments. The
    rule stops the experiment when ``step >= rule.warmup_steps``, at least
    ``rule.min_experiments`` finished experiments reported this step, and ``value`` is worse
    (strictly) than their median at this step.
    """
    return stop_reason(rule, direction, finished_curves, step, value) is not None


def stop_reason(
    rule: MedianStopping,
    direction: Direction,
    finished_curves: Sequence[Mapping[int, float]],
    step: int,
    value: float,
    *,
    metric: str | None = None,
) -> str | None:
    """Return why ``should_stop`` stops the experiment (step, value, median, count), or None."""
    if step < rule.warmup_steps:
        return None
    at_step = [curve[step] for curve in finished_curves if step in curve]
    if len(at_step) < rule.min_experiments:
        return None
    median = statistics.median(at_step)
    worse = value > median if direction == "minimize" else value < median
    if not worse:
        return None
    return (
        f"stopped at step {step}: value {value} is worse than the median {median} of the "
        f"{len(at_step)} finished experiments at that step "
        f"({direction}{' ' + metric if metric else ''}, median stopping)"
    )


class Reporter:
    """Handed to an objective that takes a second argument: ``reporter.report(step, value)``.

    Records the intermediate value and, when the spec has an early-stopping rule that says so,
    raises ``ExperimentPrunedError`` (let it propagate: the experiment is recorded as pruned).
    """

    def __init__(
        self,
        rule: MedianStopping | None,
        direction: Direction,
        finished_curves: Sequence[Mapping[int, float]],
    ) -> None:
        self._rule = rule
        self._direction = direction
        self._finished = list(finished_curves)
        self._lock = threading.Lock()
        self.intermediate: dict[int, float] = {}

    def report(self, step: int, value: float) -> None:
        """Record ``value`` at ``step``; raise ``ExperimentPrunedError`` if the experiment is to stop."""
        with self._lock:
            self.intermediate[int(step)] = float(value)
        if self._rule is None:
            return
        reason = stop_reason(self._rule, self._direction, self._finished, int(step), float(value))
        if reason is not None:
            raise ExperimentPrunedError(reason)
