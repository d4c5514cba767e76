"""The StatsD client Airflow loads: every call goes into a Prometheus registry, nothing goes over UDP.

Airflow constructs the class positionally as ``(host, port, prefix, ipv6)``, so the ipv6 flag lands
in ``maxudpsize``; host and port are accepted and ignored (no socket is ever opened).

Why the public methods are overridden: ``incr``/``decr``/``gauge``/``timing``/``set`` receive
typed values, so the hot path needs no string formatting or parsing, and ``rate`` sampling (which
would randomly discard calls) never happens. ``timer()`` is inherited: statsd's Timer calls
``self.timing``. ``pipeline()`` returns a pipeline that replays its calls on the client. As a
catch-all for code that goes through statsd's formatting layer, ``_send_stat`` and ``_send`` parse
StatsD lines back into calls, so no path can reach a socket.

This module never imports Airflow at module level: it runs wherever ``statsd`` does.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

# statsd ships no type information.
from statsd import StatsClient  # type: ignore[import-untyped]
from statsd.client.udp import Pipeline  # type: ignore[import-untyped]

from mlwf_stats_bridge._errors import InvalidSettingError, InvalidStatError
from mlwf_stats_bridge._rules import (
    RULES_ENV,
    Mapped,
    Mapper,
    Rule,
    rules_from_environment,
    sanitize_name,
)
from mlwf_stats_bridge._writers import (
    counter_adder,
    gauge_setter,
    histogram_observer,
    multiprocess_lock,
)

log = logging.getLogger(__name__)

#: Environment variable: series per metric before new label sets fold into ``__overflow__``.
MAX_SERIES_ENV = "MLWF_STATS_BRIDGE_MAX_SERIES"
#: Environment variable: "1"/"0" forces whether untagged duplicates of legacy names are skipped.
LEGACY_NAMES_ENV = "MLWF_STATS_BRIDGE_LEGACY_NAMES"
DEFAULT_MAX_SERIES = 1000
#: Environment variable: metric families of names without a mapping rule, per process.
MAX_UNMAPPED_ENV = "MLWF_STATS_BRIDGE_MAX_UNMAPPED"
DEFAULT_MAX_UNMAPPED = 500
OVERFLOW = "__overflow__"
#: The help text of a family a rule named, and of one named after a StatsD name without a rule.
MAPPED_HELP = "Airflow StatsD metric {stat} (mlwf-stats-bridge)"
UNMAPPED_HELP_PREFIX = "StatsD name "
#: Ends the help text of every family of a name without a rule: the exposition tells them apart
#: by it (``is_unmapped_help``), so the budget of unmapped names holds across processes.
UNMAPPED_HELP_MARKER = " without a mapping rule (mlwf-stats-bridge)"
#: Histogram buckets in seconds: Airflow times things from milliseconds to hours.
BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    7200,
    21600,
    86400,
    math.inf,
)
#: Resolved names kept per client; beyond this, names are resolved on every call (still recorded).
_CACHE_LIMIT = 100_000
#: Values taken as they are; anything else goes through ``_number`` (which also accepts subclasses).
_PLAIN_NUMBERS = frozenset((int, float))
#: The recorder caches, one per kind of call: ``gd`` is a gauge changed by a delta.
_KINDS = ("c", "g", "gd", "ms")

# Every metric update of every client happens under this one lock. It makes updates thread-safe
# and, because it is held across fork() (see _before_fork), a child never inherits it in a
# locked state. prometheus_client's own multiprocess lock is held across fork() too: other code
# of the process (not this client) may be writing a metric in another thread when it forks.
_LOCK = threading.Lock()
_CLIENTS: weakref.WeakSet[PrometheusStatsClient] = weakref.WeakSet()

Recorder = Callable[[float], None]


def multiprocess_dir() -> str | None:
    """Return the multiprocess directory when prometheus_client runs in multiprocess mode."""
    if getattr(values.ValueClass, "_multiprocess", False):
        return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    return None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidSettingError(f"{name}={raw!r}: expected a positive integer")
    return value


def limit_setting(keyword: str, value: int | None, env: str, default: int) -> int:
    """Return a size limit: ``value`` if given (at least 1), else ``env``'s, else ``default``."""
    if value is None:
        return _env_int(env, default)
    if value < 1:
        raise InvalidSettingError(f"{keyword} must be at least 1, got {value}")
    return value


def _legacy_names_default() -> bool:
    raw = os.environ.get(LEGACY_NAMES_ENV, "").strip().lower()
    if raw:
        if raw not in ("1", "0", "true", "false"):
            raise InvalidSettingError(f"{LEGACY_NAMES_ENV}={raw!r}: expected 1, 0, true or false")
        return raw in ("1", "true")
    airflow_conf = sys.modules.get("airflow.configuration")
    if airflow_conf is not None:  # inside Airflow: follow [metrics] legacy_names_on
        conf = airflow_conf.conf
        return bool(conf.getboolean("metrics", "legacy_names_on", fallback=True))
    return True


def unmapped_help(stat: str) -> str:
    """Return the help text of a metric family named after ``stat``, a name without a rule."""
    return f"{UNMAPPED_HELP_PREFIX}{stat}{UNMAPPED_HELP_MARKER}"


def is_unmapped_help(help_text: str) -> bool:
    """Return whether ``help_text`` is that of a family of a StatsD name without a rule."""
    return help_text.startswith(UNMAPPED_HELP_PREFIX) and help_text.endswith(UNMAPPED_HELP_MARKER)


class _Refused(Exception):
    """A new family of a name without a rule would exceed ``max_unmapped``: not created."""


class _Family:
    """One Prometheus metric and its series, with the cardinality cap."""

    def __init__(self, metric: Any, label_names: tuple[str, ...], unknown: bool) -> None:
        self.metric = metric
        self.label_names = label_names
        #: Named after a StatsD name without a rule (its help text says so).
        self.unknown = unknown
        self.series: set[tuple[str, ...]] = set()


class PrometheusStatsClient(StatsClient):  # type: ignore[misc]  # statsd is untyped
    """A ``statsd.StatsClient`` that records into a Prometheus registry instead of sending UDP."""

    def __init__(
        self,
        host: str | None = "localhost",
        port: int | None = 8125,
        prefix: str | None = None,
        maxudpsize: int | bool = 512,
        ipv6: bool = False,
        *,
        registry: CollectorRegistry | None = None,
        max_series: int | None = None,
        max_unmapped: int | None = None,
        rules: list[Rule] | None = None,
        legacy_names: bool | None = None,
    ) -> None:
        # StatsClient.__init__ is not called: it resolves the host and opens a UDP socket.
        self._addr = None
        self._sock = None
        self._prefix: str | None = prefix
        self._maxudpsize: int = 512 if isinstance(maxudpsize, bool) else maxudpsize
        self._name_prefix = sanitize_name(prefix) + "_" if prefix else "airflow_"
        self.max_series = limit_setting(
            "max_series", max_series, MAX_SERIES_ENV, DEFAULT_MAX_SERIES
        )
        # Metric families this process creates for StatsD names without a mapping rule.
        self.max_unmapped = limit_setting(
            "max_unmapped", max_unmapped, MAX_UNMAPPED_ENV, DEFAULT_MAX_UNMAPPED
        )
        self._rules = rules_from_environment() if rules is None else rules
        self._legacy = _legacy_names_default() if legacy_names is None else legacy_names
        self._own_registry = registry
        self._reset()
        _CLIENTS.add(self)

    def _reset(self) -> None:
        """Start with no metrics (at construction and in a forked child)."""
        self.multiprocess_dir = multiprocess_dir()
        if self.multiprocess_dir:
            os.makedirs(self.multiprocess_dir, exist_ok=True)
        # In multiprocess mode values live in per-process files; the registry is only for
        # single-process use, where each process (also a forked child) owns a fresh one.
        if self._own_registry is not None and hasattr(self, "_families"):
            # A caller's registry outlives the reset: take our old metrics out of it first.
            old = [f.metric for f in self._families.values()] + list(self._bookkeeping.values())
            for metric in old:
                with contextlib.suppress(KeyError):
                    self._own_registry.unregister(metric)
        self.registry = self._own_registry or CollectorRegistry(auto_describe=True)
        self._mapper = Mapper(self._rules, legacy_names=self._legacy)
        # The family names rules give, whatever the kind: a name without a rule never takes one,
        # so a rule-mapped metric keeps its name and is never in a family marked "without a rule".
        self._rule_families = frozenset(
            self._name_prefix + name + suffix
            for name in self._mapper.rule_names
            for suffix in ("", "_decremented", "_seconds", "_distinct")
        )
        self._families: dict[str, _Family] = {}
        # One dict per kind, keyed by the StatsD name: the hot path builds no key.
        self._recorders: dict[str, dict[str, Recorder]] = {kind: {} for kind in _KINDS}
        self._cached = 0
        self._gauge_values: dict[tuple[str, tuple[str, ...]], float] = {}
        self._set_members: dict[tuple[str, tuple[str, ...]], set[str]] = {}
        self._bookkeeping: dict[str, Any] = self._register_bookkeeping()
        # Families created for names without a rule, against max_unmapped (families, not names:
        # "a.b" and "a_b" share one); calls that would need one more are counted, not recorded.
        self._unmapped_families = 0
        self._warned_unmapped = False
        add_refused = counter_adder(self._bookkeeping["dropped_unmapped"])
        self._count_refused: Recorder = lambda _value: add_refused(1)

    # ---- public StatsClient API ------------------------------------------------------------

    def incr(self, stat: str, count: float = 1, rate: float = 1) -> None:
        """Increment counter ``stat`` by ``count`` (every call counts: ``rate`` is not sampled)."""
        recorder = self._recorders["c"].get(stat) or self._resolve("c", stat)
        if count.__class__ not in _PLAIN_NUMBERS:
            count = _number(stat, count)
        with _LOCK:
            recorder(count)

    def decr(self, stat: str, count: float = 1, rate: float = 1) -> None:
        """Decrement counter ``stat``: counted in its ``_decremented_total`` sibling."""
        self.incr(stat, -_number(stat, count), rate)

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False) -> None:
        """Set gauge ``stat`` to ``value``, or change it by ``value`` when ``delta``."""
        kind = "gd" if delta else "g"
        recorder = self._recorders[kind].get(stat) or self._resolve(kind, stat)
        if value.__class__ not in _PLAIN_NUMBERS:
            value = _number(stat, value)
        with _LOCK:
            recorder(value)

    def timing(self, stat: str, delta: float | timedelta, rate: float = 1) -> None:
        """Observe ``delta`` (milliseconds, or a timedelta) in histogram ``stat`` (in seconds)."""
        if isinstance(delta, timedelta):
            seconds = delta.total_seconds()
        else:
            seconds = (
                delta if delta.__class__ in _PLAIN_NUMBERS else _number(stat, delta)
            ) / 1000.0
        recorder = self._recorders["ms"].get(stat) or self._resolve("ms", stat)
        with _LOCK:
            recorder(seconds)

    def set(self, stat: str, value: Any, rate: float = 1) -> None:
        """Add ``value`` to set ``stat``; exposed as a gauge of distinct values seen by this process."""
        mapped = self._mapper.map(stat)
        if mapped.skip_reason is not None:  # as every other call: counted, not recorded
            self._bookkeeping["skipped"].labels(stat, mapped.skip_reason).inc()
            return
        with _LOCK:
            try:
                family, labels = self._series("s", stat, mapped)
            except _Refused:
                self._refused(stat)(1)
                return
            members = self._set_members.setdefault((family, labels), set())
            if len(members) < self.max_series:
                members.add(str(value))
            metric = self._families[family].metric
            (metric.labels(*labels) if labels else metric).set(len(members))

    def pipeline(self) -> BridgePipeline:
        """Return a pipeline whose calls are recorded together on ``send()``."""
        return BridgePipeline(self)

    def close(self) -> None:
        """Do nothing: the client holds no socket."""

    # ---- catch-alls below the public API ---------------------------------------------------

    def _send_stat(self, stat: str, value: str, rate: float) -> None:
        self._apply_line(stat, value)

    def _after(self, data: str | None) -> None:
        if data:
            self._send(data)

    def _send(self, data: str) -> None:
        for line in data.splitlines():
            stat, sep, value = line.partition(":")
            if not sep:
                raise InvalidStatError(f"StatsD line {line!r} has no ':'")
            if self._prefix and stat.startswith(self._prefix + "."):
                stat = stat[len(self._prefix) + 1 :]
            self._apply_line(stat, value)

    def _apply_line(self, stat: str, value: str) -> None:
        parts = value.split("|")
        if len(parts) < 2:
            raise InvalidStatError(f"StatsD value {value!r} of {stat!r} has no type")
        raw, kind = parts[0], parts[1]
        if kind == "s":
            self.set(stat, raw)
            return
        try:
            number = float(raw)
        except ValueError:
            raise InvalidStatError(f"StatsD value {raw!r} of {stat!r} is not a number") from None
        if kind == "c":
            self.incr(stat, number)
        elif kind == "g":
            self.gauge(stat, number, delta=raw[:1] in "+-")
        elif kind == "ms":
            self.timing(stat, number)
        else:
            raise InvalidStatError(f"StatsD type {kind!r} of {stat!r} is not c, g, ms or s")

    # ---- resolution -----------------------------------------------------------------------

    def _resolve(self, kind: str, stat: str) -> Recorder:
        mapped = self._mapper.map(stat)
        if mapped.skip_reason is not None:
            add_skipped = counter_adder(
                self._bookkeeping["skipped"].labels(stat, mapped.skip_reason)
            )
            recorder: Recorder = lambda _value: add_skipped(1)  # noqa: E731
            self._cache(kind, stat, recorder)
            return recorder
        with _LOCK:
            return self._resolve_locked(kind, stat, mapped)

    def _resolve_locked(self, kind: str, stat: str, mapped: Mapped) -> Recorder:
        try:
            family, labels = self._series(kind, stat, mapped)
        except _Refused:
            # Not cached: a stream of unique refused names (IDs) would fill the cache that the
            # names recorded need; a refused name resolves again on each call (the rare path).
            return self._refused(stat)
        metric = self._families[family].metric
        child = metric.labels(*labels) if labels else metric
        recorder: Recorder
        if kind == "c":
            add = counter_adder(child)
            negatives: list[Recorder] = []

            def count(value: float) -> None:
                if value >= 0:
                    add(value)
                    return
                if not negatives:  # created on the first decrement; recorders run under _LOCK
                    try:
                        negative_family, _ = self._series("cd", stat, mapped, labels)
                    except _Refused:  # no room for the _decremented family: count, not record
                        negatives.append(self._refused(stat))
                    else:
                        negative_metric = self._families[negative_family].metric
                        negatives.append(
                            counter_adder(
                                negative_metric.labels(*labels) if labels else negative_metric
                            )
                        )
                negatives[0](-value)

            recorder = count

        elif kind == "g":
            key = (family, labels)
            gauge_values = self._gauge_values
            set_gauge = gauge_setter(child)

            def set_absolute(value: float) -> None:
                gauge_values[key] = value
                set_gauge(value)

            recorder = set_absolute

        elif kind == "gd":
            key = (family, labels)
            gauge_values = self._gauge_values
            set_gauge = gauge_setter(child)

            def set_delta(value: float) -> None:
                new = gauge_values.get(key, 0.0) + value
                gauge_values[key] = new
                set_gauge(new)

            recorder = set_delta

        else:
            recorder = histogram_observer(child)
        if labels and labels[0] == OVERFLOW:
            add_dropped = counter_adder(
                self._bookkeeping["dropped"].labels(family.partition(":")[2])
            )
            inner = recorder

            def count_dropped(value: float) -> None:
                add_dropped(1)
                inner(value)

            recorder = count_dropped

        else:
            self._cache(kind, stat, recorder)
        return recorder

    def _refused(self, stat: str) -> Recorder:
        """Return the recorder of calls refused by ``max_unmapped``; caller holds _LOCK."""
        if not self._warned_unmapped:
            self._warned_unmapped = True
            log.warning(
                "mlwf-stats-bridge: this process created its %d metric families for StatsD names "
                "without a mapping rule (max_unmapped / %s); calls that need a new one (first: "
                "%r) are not recorded, only counted in mlwf_stats_bridge_dropped_unmapped_total. "
                "Names holding IDs belong in labels: map them with a rule file (%s)",
                self.max_unmapped,
                MAX_UNMAPPED_ENV,
                stat,
                RULES_ENV,
            )
        return self._count_refused

    def _cache(self, kind: str, stat: str, recorder: Recorder) -> None:
        recorders = self._recorders[kind]
        if stat not in recorders and self._cached < _CACHE_LIMIT:
            recorders[stat] = recorder
            self._cached += 1

    def _series(
        self, kind: str, stat: str, mapped: Mapped, labels: tuple[str, ...] | None = None
    ) -> tuple[str, tuple[str, ...]]:
        """Return (family key, label values) for a call, creating the family; caller holds _LOCK."""
        base = self._name_prefix + mapped.name
        name = {
            "c": base,  # Counter adds _total
            "cd": base + "_decremented",
            "g": base,
            "gd": base,
            "ms": base + "_seconds",
            "s": base + "_distinct",
        }[kind]
        key, family = self._family(name, kind, mapped.label_names, stat, mapped.unknown)
        values_ = mapped.label_values if labels is None else labels
        if values_ and values_ not in family.series:
            if len(family.series) >= self.max_series:
                values_ = (OVERFLOW,) * len(values_)
            family.series.add(values_)
        return key, values_

    @staticmethod
    def _family_key(name: str, kind: str) -> str:
        return f"{kind[0]}:{name}"

    def _family(
        self, name: str, kind: str, label_names: tuple[str, ...], stat: str, unknown: bool
    ) -> tuple[str, _Family]:
        """Return the family ``name`` of ``kind``, creating it; raise _Refused when it would be
        one family of a name without a rule too many (the budget is checked on creation only)."""
        wanted = name
        why = ""
        while unknown and name in self._rule_families:  # e.g. "scheduler.heartbeat"
            name += "_unmapped"
            why = "is a name a rule gives"
        key = self._family_key(name, kind)
        family = self._families.get(key)
        # Same name, other labels (e.g. a user rule), or one side without a rule: keep both apart,
        # renamed, so a rule-mapped metric never lands in a family marked "without a rule".
        while family is not None and (family.label_names, family.unknown) != (label_names, unknown):
            if family.unknown != unknown:
                name += "_unmapped" if unknown else "_mapped"
                why = "is taken by a family " + ("with" if unknown else "without") + " a rule"
            else:
                name = f"{name}_by_{'_'.join(label_names) or 'none'}"
                why = "has other labels in earlier calls"
            key = self._family_key(name, kind)
            family = self._families.get(key)
        if family is not None:
            return key, family
        if unknown and self._unmapped_families >= self.max_unmapped:
            raise _Refused(stat)
        help_text = unmapped_help(stat) if unknown else MAPPED_HELP.format(stat=stat)
        registry = None if self.multiprocess_dir else self.registry
        metric: Any
        if kind[0] == "c":
            metric = Counter(name, help_text, label_names, registry=registry)
        elif kind[0] in "gs":
            metric = Gauge(
                name, help_text, label_names, registry=registry, multiprocess_mode="livemostrecent"
            )
        else:
            metric = Histogram(name, help_text, label_names, registry=registry, buckets=BUCKETS)
        family = _Family(metric, label_names, unknown)
        self._families[key] = family
        if why:  # logged once, when the renamed family is created
            log.warning("mlwf-stats-bridge: %r: %r %s; recorded as %r", stat, wanted, why, name)
        if unknown:
            self._unmapped_families += 1
            log.info("mlwf-stats-bridge: no rule for %r, recorded as %r", stat, name)
        return key, family

    def _register_bookkeeping(self) -> dict[str, Any]:
        registry = None if self.multiprocess_dir else self.registry
        return {
            "dropped": Counter(
                "mlwf_stats_bridge_dropped_series",
                "Calls folded into the __overflow__ series because a metric hit its series cap",
                ["metric"],
                registry=registry,
            ),
            "dropped_unmapped": Counter(
                "mlwf_stats_bridge_dropped_unmapped",
                "Calls not recorded because they needed a new metric family for a StatsD name "
                "without a mapping rule and the process had created its max_unmapped "
                f"({MAX_UNMAPPED_ENV}) such families",
                registry=registry,
            ),
            "skipped": Counter(
                "mlwf_stats_bridge_skipped",
                "Calls not recorded, by StatsD name and reason (legacy_duplicate: the same call "
                "is recorded from its legacy name, which carries the labels)",
                ["stat", "reason"],
                registry=registry,
            ),
        }


class BridgePipeline(Pipeline):  # type: ignore[misc]  # statsd is untyped
    """A statsd pipeline that records its buffered calls on the client when sent."""

    def __init__(self, client: PrometheusStatsClient | BridgePipeline) -> None:
        self._client = client
        self._prefix: str | None = client._prefix
        self._maxudpsize: int = client._maxudpsize
        self._calls: list[tuple[str, tuple[Any, ...]]] = []
        self._stats = self._calls  # statsd's PipelineBase checks its emptiness only

    def incr(self, stat: str, count: float = 1, rate: float = 1) -> None:
        """Buffer an increment."""
        self._calls.append(("incr", (stat, count, rate)))

    def decr(self, stat: str, count: float = 1, rate: float = 1) -> None:
        """Buffer a decrement."""
        self._calls.append(("decr", (stat, count, rate)))

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False) -> None:
        """Buffer a gauge."""
        self._calls.append(("gauge", (stat, value, rate, delta)))

    def timing(self, stat: str, delta: float | timedelta, rate: float = 1) -> None:
        """Buffer a timing."""
        self._calls.append(("timing", (stat, delta, rate)))

    def set(self, stat: str, value: Any, rate: float = 1) -> None:
        """Buffer a set value."""
        self._calls.append(("set", (stat, value, rate)))

    def _send_stat(self, stat: str, value: str, rate: float) -> None:
        self._calls.append(("_send_stat", (stat, value, rate)))

    def pipeline(self) -> BridgePipeline:
        """Return a nested pipeline that flushes into this one."""
        return BridgePipeline(self)

    def send(self) -> None:
        """Record every buffered call on the client, in order."""
        calls, self._calls[:] = list(self._calls), []
        for method, args in calls:
            getattr(self._client, method)(*args)

    def _send(self) -> None:
        self.send()


def _number(stat: str, value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise InvalidStatError(f"value of metric {stat!r} must be a number, got {value!r}")


#: prometheus_client's multiprocess lock while a fork() holds it (None when not held).
_held_at_fork: Any = None


def _before_fork() -> None:
    global _held_at_fork
    _LOCK.acquire()
    lock = multiprocess_lock(values.ValueClass)
    if lock is not None:
        lock.acquire()  # in the same order as a write through this client: _LOCK, then this
        _held_at_fork = lock


def _release_held_at_fork() -> None:
    global _held_at_fork
    if _held_at_fork is not None:
        _held_at_fork.release()  # the forking thread took it; in the child, that thread goes on
        _held_at_fork = None


def _after_fork_parent() -> None:
    _release_held_at_fork()
    _LOCK.release()


def _after_fork_child() -> None:
    global _LOCK
    _release_held_at_fork()
    _LOCK = threading.Lock()  # the parent's lock object stays held in the child: never use it
    for client in list(_CLIENTS):
        try:
            client._reset()
        except Exception:  # one client's failure must not leave the others with the parent's state
            log.exception("mlwf-stats-bridge: cannot reset a client after fork")


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child
)
