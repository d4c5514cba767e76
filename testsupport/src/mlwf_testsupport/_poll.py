"""Wait for a condition on real processes: probe until it holds, or fail naming what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

#: How much of the last value's repr a timeout message quotes.
_EXCERPT = 500


@overload
def poll(probe: Callable[[], T | None], timeout: float, what: str, interval: float = ...) -> T: ...


@overload
def poll(
    probe: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = ...,
    *,
    until: Callable[[T], object],
) -> T: ...


def poll(
    probe: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 1.0,
    *,
    until: Callable[[Any], object] | None = None,
) -> Any:
    """Call ``probe()`` every ``interval`` s until its value is truthy (or ``until(value)`` is); return it.

    The probe runs at once and a last time at the deadline. After ``timeout`` s raise
    AssertionError naming ``what`` (e.g. "run X of dag Y to finish") and the last value seen.
    Exceptions of the probe propagate: catch the transient ones (a server still starting) inside it.
    """
    deadline = time.monotonic() + timeout
    checks = 0
    while True:
        value = probe()
        checks += 1
        if until(value) if until is not None else value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            last = repr(value)
            if len(last) > _EXCERPT:
                last = f"{last[:_EXCERPT]}... ({len(last)} characters)"
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what} "
                f"({checks} checks; last value seen: {last})"
            )
        time.sleep(min(interval, remaining))
