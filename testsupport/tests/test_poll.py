"""mlwf_testsupport.poll: wait for a probe, fail naming what was awaited and the last value."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from mlwf_testsupport import poll


def test_returns_the_first_truthy_value() -> None:
    """poll calls the probe until it returns something truthy and returns that."""
    values: Iterator[object] = iter([None, False, [], "ready"])
    assert poll(lambda: next(values), 5, "readiness", interval=0.01) == "ready"


def test_until_decides_and_the_accepted_value_is_returned() -> None:
    """With until, the value is returned as soon as until accepts it, falsy or not."""
    values = iter(["queued", "running", "failed"])
    state = poll(lambda: next(values), 5, "a run", 0.01, until=lambda s: s in {"success", "failed"})
    assert state == "failed"
    assert poll(lambda: 0, 5, "zero", until=lambda n: n == 0) == 0


def test_timeout_names_what_and_the_last_value_seen() -> None:
    """After the timeout, AssertionError names what was awaited, the checks and the last value."""
    values = iter(range(1000))
    with pytest.raises(AssertionError) as caught:
        poll(
            lambda: next(values), 0.2, "the counter to reach 1000", 0.05, until=lambda n: n >= 1000
        )
    message = str(caught.value)
    assert message.startswith("timed out after 0.2 s waiting for the counter to reach 1000 (")
    checks = int(message.split("(")[1].split(" checks")[0])
    assert 3 <= checks <= 6
    assert message.endswith(f"last value seen: {checks - 1})")


def test_probe_runs_a_last_time_at_the_deadline() -> None:
    """An interval longer than the timeout still probes at the deadline, not only at the start."""
    started = time.monotonic()
    calls: list[float] = []

    def probe() -> bool:
        calls.append(time.monotonic() - started)
        return len(calls) == 2

    assert poll(probe, 0.3, "the second call", interval=10) is True
    assert 0.25 <= calls[1] < 2


def test_long_last_values_are_cut() -> None:
    """A large last value is quoted as an excerpt with its full length."""
    with pytest.raises(
        AssertionError, match=r"last value seen: 'xxx+\.\.\. \(2002 characters\)\)$"
    ):
        poll(lambda: "x" * 2000, 0, "something", until=lambda _: False)


def test_probe_exceptions_propagate() -> None:
    """An exception of the probe is not swallowed: it ends the wait at once."""

    def probe() -> None:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError, match="refused"):
        poll(probe, 60, "a server")
