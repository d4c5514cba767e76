"""One side of the benchmark: a process emitting metrics the way an Airflow task process does.

Its environment says which side it is (``run.py`` sets it): ``[metrics] statsd_on`` with either
mlwf-stats-bridge's client and ``PROMETHEUS_MULTIPROC_DIR`` (as an mlwf instance configures it)
or Airflow's stock StatsClient sending UDP to the listener process. Like Airflow's task runner
(``airflow.sdk.execution_time.task_runner.main``) it calls ``stats.initialize`` with the
configured factory, then emits through ``stats.incr``/``timing``/``gauge`` with tags: with
``legacy_names_on`` (the default) each call reaches the client twice, the legacy name and the
tagged one.

Each round times two layers per kind of call (``incr``, ``timing``, ``gauge``):

- ``client``: the calls Airflow's ``SafeStatsdLogger`` makes on the client for one ``stats`` call
  (recorded once at start, then replayed on the client itself): the client's own cost;
- ``airflow``: the whole ``stats.<kind>(..., tags=...)`` call, as a task pays it;
- ``harness``: the same replay on a client whose methods do nothing: what the replay itself
  costs, included in both sides' ``client`` time (so it pulls the ratio towards 1).

Commands, one JSON object per line on stdin, one answer per line on stdout:

- ``{"cmd": "round", "calls": N}``: N calls of each kind and layer; answers seconds per call;
- ``{"cmd": "burst", "calls": N, "threads": T}``: N ``incr`` calls spread over T threads;
- ``{"cmd": "exit"}``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow.sdk._shared.observability.metrics import stats
from airflow.sdk.configuration import conf
from airflow.sdk.observability.metrics import stats_utils

TAGS = {"dag_id": "bench", "task_id": "t"}


def _incr() -> None:
    stats.incr("ti.finish", tags={**TAGS, "state": "success"})


def _timing() -> None:
    stats.timing("task.duration", 1500.0, tags=TAGS)


def _gauge() -> None:
    stats.gauge("pool.open_slots", 128, tags={"pool_name": "default_pool"})


KINDS: dict[str, Callable[[], None]] = {"incr": _incr, "timing": _timing, "gauge": _gauge}


class _Recorder:
    """Stands in for the client while one ``stats`` call runs: records the client calls made."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        method = getattr(self.client, name)
        return lambda *args, **kwargs: self.calls.append((method, args, kwargs))


class _NullClient:
    """A client that does nothing: replaying on it times the replay alone."""

    def incr(self, stat: str, count: float = 1, rate: float = 1) -> None:
        pass

    def decr(self, stat: str, count: float = 1, rate: float = 1) -> None:
        pass

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False) -> None:
        pass

    def timing(self, stat: str, delta: float, rate: float = 1) -> None:
        pass


Replay = list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]


def _replay(calls: Replay) -> Callable[[], None]:
    def replay() -> None:
        for method, args, kwargs in calls:
            method(*args, **kwargs)

    return replay


def _client_calls(
    backend: Any,
) -> tuple[dict[str, Callable[[], None]], dict[str, Callable[[], None]], dict[str, int]]:
    """For each kind: a function making on the client the calls one ``stats`` call makes, the
    same calls on a client doing nothing, and how many calls that is."""
    replays: dict[str, Callable[[], None]] = {}
    harness: dict[str, Callable[[], None]] = {}
    null = _NullClient()
    counts: dict[str, int] = {}
    client = backend.statsd
    for kind, call in KINDS.items():
        recorder = _Recorder(client)
        backend.statsd = recorder
        try:
            call()
        finally:
            backend.statsd = client
        if not recorder.calls:
            raise SystemExit(f"stats.{kind} made no call on the client")
        calls = list(recorder.calls)
        replays[kind] = _replay(calls)
        harness[kind] = _replay([(getattr(null, m.__name__), a, k) for m, a, k in calls])
        counts[kind] = len(calls)
    return replays, harness, counts


def _round(
    calls: int,
    client_calls: dict[str, Callable[[], None]],
    harness: dict[str, Callable[[], None]],
) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for layer, functions in (("client", client_calls), ("airflow", KINDS), ("harness", harness)):
        for kind, call in functions.items():
            started = time.perf_counter()
            for _ in range(calls):
                call()
            seconds[f"{layer}_{kind}"] = (time.perf_counter() - started) / calls
    return seconds


def _burst(calls: int, threads: int) -> dict[str, Any]:
    per_thread = calls // threads

    def work() -> None:
        for _ in range(per_thread):
            _incr()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"seconds": time.perf_counter() - started, "calls": per_thread * threads}


def main() -> None:
    stats.initialize(
        factory=stats_utils.get_stats_factory(),
        export_legacy_names=conf.getboolean("metrics", "legacy_names_on"),
    )
    backend = stats._get_backend()  # what the factory built: a SafeStatsdLogger around the client
    client_calls, harness, counts = _client_calls(backend)
    client = backend.statsd
    kind = type(client)
    hello = {
        "client": f"{kind.__module__}.{kind.__qualname__}",
        "multiprocess_dir": getattr(client, "multiprocess_dir", None),
        "client_calls_per_stats_call": counts,
    }
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "round":
            answer: dict[str, Any] = _round(command["calls"], client_calls, harness)
        elif command["cmd"] == "burst":
            answer = _burst(command["calls"], command["threads"])
        else:
            return
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
