"""The median-stopping rule for experiments that report intermediate values."""

from __future__ import annotations

import pytest
from mlwf_tuning import ExperimentPrunedError, MedianStopping, Reporter, should_stop

CURVES = [
    {1: 1.0, 2: 0.8},
    {1: 2.0, 2: 1.0},
    {1: 3.0, 2: 1.2},
]  # medians: step 1 → 2.0, step 2 → 1.0


def test_worse_than_median_is_stopped_when_minimizing() -> None:
    """A value above the median of finished experiments at that step stops the experiment; at or below does not."""
    rule = MedianStopping(min_experiments=3)
    assert should_stop(rule, "minimize", CURVES, 1, 2.1)
    assert not should_stop(rule, "minimize", CURVES, 1, 2.0)
    assert not should_stop(rule, "minimize", CURVES, 2, 0.9)


def test_worse_than_median_is_stopped_when_maximizing() -> None:
    """When maximizing, a value below the median stops the experiment."""
    rule = MedianStopping(min_experiments=3)
    assert should_stop(rule, "maximize", CURVES, 2, 0.9)
    assert not should_stop(rule, "maximize", CURVES, 2, 1.1)


def test_nothing_stops_before_enough_finished_experiments() -> None:
    """With fewer finished experiments reporting the step than min_experiments, no experiment is stopped."""
    assert not should_stop(MedianStopping(min_experiments=4), "minimize", CURVES, 1, 100.0)
    assert not should_stop(
        MedianStopping(min_experiments=1), "minimize", CURVES, 3, 100.0
    )  # nobody reported step 3


def test_nothing_stops_during_warmup_steps() -> None:
    """Steps below warmup_steps never stop an experiment, however bad its value."""
    rule = MedianStopping(min_experiments=1, warmup_steps=2)
    assert not should_stop(rule, "minimize", CURVES, 1, 100.0)
    assert should_stop(rule, "minimize", CURVES, 2, 100.0)


def test_reporter_records_values_and_raises_when_stopped() -> None:
    """Reporter.report keeps every reported value and raises ExperimentPrunedError naming the step when the rule stops it."""
    reporter = Reporter(MedianStopping(min_experiments=3), "minimize", CURVES)
    reporter.report(1, 1.5)
    with pytest.raises(
        ExperimentPrunedError, match=r"stopped at step 2: value 5\.0 is worse than the median"
    ):
        reporter.report(2, 5.0)
    assert reporter.intermediate == {1: 1.5, 2: 5.0}


def test_reporter_without_a_rule_never_stops() -> None:
    """Without an early-stopping rule, reporting only records values."""
    reporter = Reporter(None, "minimize", CURVES)
    reporter.report(1, 1e9)
    assert reporter.intermediate == {1: 1e9}
