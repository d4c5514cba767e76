"""Writers of one series' value: what prometheus_client does per update, without the rest.

In multiprocess mode each ``Counter.inc``, ``Gauge.set`` or ``Histogram.observe`` of a child
checks that the child is observable (and a counter's amount non-negative), then, per value,
takes prometheus_client's process-wide lock, calls ``os.getpid()`` (a system call) to notice a
fork, updates the in-memory value and packs it into the process's mmap'ed file; a histogram
does that twice (its sum and one bucket, found by a loop over the bounds). The checks and the
fork detection are most of the time of a write. The writers here do the part that makes the
value: the same lock, the same in-memory value and timestamp, the same bytes at the same place
in the same file, in the same order. They leave out

- the checks: the client writes only children, and only amounts it has checked;
- the fork detection: the client resets after every fork (``os.register_at_fork``) and builds
  writers only from values created after that, whose creation ran prometheus_client's own
  fork check and so opened the files of the current process.

They are used only with the value class they were written against (prometheus_client 0.26):
``MultiProcessValue`` with ``os.getpid`` as process identifier, its lock in the closure of
``inc``, and values holding ``_file``, ``_key``, ``_value`` and ``_timestamp``. With any other
value class (single-process mode, or a layout they do not recognize) the writers are the public
methods, and ``tests/test_writers.py`` fails, so that an upgrade that loses the fast path is
noticed.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from prometheus_client import values

Writer = Callable[[float], None]


def _closure(function: Any) -> dict[str, Any]:
    cells = function.__closure__ or ()
    return dict(zip(function.__code__.co_freevars, (c.cell_contents for c in cells), strict=True))


def multiprocess_lock(value_class: Any) -> Any | None:
    """Return the lock of prometheus_client's multiprocess value class ``value_class``, or None
    when it is not the class the writers know (then the public methods are used)."""
    if not getattr(value_class, "_multiprocess", False):
        return None
    try:
        lock = _closure(value_class.inc)["lock"]
        check = value_class._MmapedValue__check_for_pid_change
        identifier = _closure(check)["process_identifier"]
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if identifier is not os.getpid or not callable(getattr(lock, "acquire", None)):
        return None
    return lock


class _MmapedValues:
    """Writers for the values of one multiprocess value class, under its lock."""

    def __init__(self, value_class: Any, lock: Any) -> None:
        self.value_class = value_class
        self.lock = lock

    def knows(self, *series_values: Any) -> bool:
        """Whether every value is of the class and has the attributes the writers use."""
        return all(
            type(v) is self.value_class
            and all(hasattr(v, a) for a in ("_file", "_key", "_value", "_timestamp"))
            and callable(getattr(v._file, "write_value", None))
            for v in series_values
        )

    def adder(self, value: Any) -> Writer:
        """``MmapedValue.inc`` without the fork check."""
        lock, write, key = self.lock, value._file.write_value, value._key

        def add(amount: float) -> None:
            with lock:
                value._value += amount
                value._timestamp = 0.0
                write(key, value._value, 0.0)

        return add

    def setter(self, value: Any) -> Writer:
        """``Gauge.set`` of a ``*mostrecent`` gauge: the value with the time it was set."""
        lock, write, key, now = self.lock, value._file.write_value, value._key, time.time

        def set_(amount: float) -> None:
            number = float(amount)
            stamp = now() or 0.0
            with lock:
                value._value = number
                value._timestamp = stamp
                write(key, number, stamp)

        return set_

    def observer(self, total: Any, buckets: list[Any], bounds: list[float]) -> Writer:
        """``Histogram.observe``: the sum, then the first bucket whose bound is >= the amount."""
        lock, key = self.lock, total._key
        write = total._file.write_value
        last = len(bounds)
        targets = [(b, b._file.write_value, b._key) for b in buckets]

        def observe(amount: float) -> None:
            index = bisect_left(bounds, amount)
            # NaN is <= no bound: like prometheus_client, it changes the sum and no bucket.
            hit = index < last and amount <= bounds[index]
            with lock:
                total._value += amount
                total._timestamp = 0.0
                write(key, total._value, 0.0)
                if hit:
                    bucket, write_bucket, bucket_key = targets[index]
                    bucket._value += 1
                    bucket._timestamp = 0.0
                    write_bucket(bucket_key, bucket._value, 0.0)

        return observe


def _mmaped_values() -> _MmapedValues | None:
    value_class = values.ValueClass
    lock = multiprocess_lock(value_class)
    return None if lock is None else _MmapedValues(value_class, lock)


def counter_adder(child: Any) -> Writer:
    """Return a function adding a non-negative amount to counter child ``child``."""
    mmaped = _mmaped_values()
    if mmaped is None or not mmaped.knows(child._value):
        inc: Writer = child.inc
        return inc
    return mmaped.adder(child._value)


def gauge_setter(child: Any) -> Writer:
    """Return a function setting gauge child ``child`` (multiprocess mode ``*mostrecent``)."""
    mmaped = _mmaped_values()
    if (
        mmaped is None
        or not getattr(child, "_is_most_recent", False)
        or not mmaped.knows(child._value)
    ):
        set_: Writer = child.set
        return set_
    return mmaped.setter(child._value)


def histogram_observer(child: Any) -> Writer:
    """Return a function observing an amount in histogram child ``child``."""
    mmaped = _mmaped_values()
    buckets = getattr(child, "_buckets", None)
    bounds = getattr(child, "_upper_bounds", None)
    if (
        mmaped is None
        or not isinstance(buckets, list)
        or not isinstance(bounds, list)
        or len(buckets) != len(bounds)
        or list(bounds) != sorted(bounds)
        or not mmaped.knows(child._sum, *buckets)
    ):
        observe: Writer = child.observe
        return observe
    return mmaped.observer(child._sum, buckets, bounds)
