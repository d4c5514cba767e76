"""The hot path: the client's writers into prometheus_client's files, and its recorder cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from mlwf_stats_bridge import PrometheusStatsClient, _client
from prometheus_client import CollectorRegistry
from prometheus_client.mmap_dict import MmapedDict


def run_multiprocess(script: str, directory: Path) -> Any:
    """Run ``script`` in a fresh interpreter in multiprocess mode; return the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def file_values(path: Path) -> dict[str, tuple[float, float]]:
    """Return {key: (value, timestamp)} of one of prometheus_client's mmap'ed files."""
    mmaped = MmapedDict(str(path), read_mode=True)
    try:
        return {key: (value, stamp) for key, value, stamp in mmaped.read_all_values()}
    finally:
        mmaped.close()


def metric_values(directory: Path, metric: str) -> dict[tuple[str, str], tuple[float, float]]:
    """Return {(sample name, labels): (value, timestamp)} of ``metric`` over every file."""
    found: dict[tuple[str, str], tuple[float, float]] = {}
    for path in sorted(directory.glob("*.db")):
        for key, entry in file_values(path).items():
            name, sample, labels, _help = json.loads(key)
            if name == metric:
                found[(sample.replace(metric, "<m>"), json.dumps(labels, sort_keys=True))] = entry
    return found


SAME_AS_PUBLIC = """
    import json, math, time
    from prometheus_client import Counter, Gauge, Histogram
    from mlwf_stats_bridge._client import BUCKETS
    from mlwf_stats_bridge._writers import counter_adder, gauge_setter, histogram_observer

    def pair(cls, **kwargs):
        return [
            cls(name, "help", ["a"], registry=None, **kwargs).labels("x")
            for name in ("fast", "public")
        ]

    fast_c, public_c = pair(Counter)
    fast_g, public_g = pair(Gauge, multiprocess_mode="livemostrecent")
    fast_h, public_h = pair(Histogram, buckets=BUCKETS)
    writers = [counter_adder(fast_c), gauge_setter(fast_g), histogram_observer(fast_h)]
    bounds = [b for b in BUCKETS if b != math.inf]
    amounts = [0, 1, 2.5, 1e-9, 3, *bounds, *(b * 1.0001 for b in bounds), 1e12, math.inf]
    started = time.time()
    for amount in amounts:
        writers[0](amount)
        public_c.inc(amount)
    for amount in [*amounts, -2, -math.inf, math.nan]:
        writers[2](amount)
        public_h.observe(amount)
    for amount in [5, -2.5, 7]:
        writers[1](amount)
        public_g.set(amount)
    print(json.dumps({
        # The writers are not the public methods themselves (or the comparison would be moot).
        "fast": [getattr(w, "__self__", None) is None for w in writers],
        "started": started,
        "finished": time.time(),
    }))
"""


def test_writers_write_what_the_public_methods_write(tmp_path: Path) -> None:
    """In multiprocess mode the direct writers leave the same values in the files as Counter.inc, Gauge.set and Histogram.observe."""
    ran = run_multiprocess(SAME_AS_PUBLIC, tmp_path)
    assert ran["fast"] == [True, True, True]
    fast, public = metric_values(tmp_path, "fast"), metric_values(tmp_path, "public")
    assert fast.keys() == public.keys()
    assert len([k for k in fast if k[0] == "<m>_bucket"]) == 22
    for key, (value, stamp) in fast.items():
        public_value, public_stamp = public[key]
        assert repr(value) == repr(public_value), key  # repr: NaN and infinities compare too
        if key[0] == "<m>":  # the gauge: the time it was set
            assert ran["started"] <= stamp <= public_stamp <= ran["finished"]
        else:
            assert stamp == public_stamp == 0.0
    assert fast[("<m>", '{"a": "x"}')][0] == 7.0  # the gauge's last value, not a sum


ACROSS_FORK = """
    import json, os, threading
    from mlwf_stats_bridge import PrometheusStatsClient

    client = PrometheusStatsClient("localhost", 8125, "airflow", False)

    def emit(n):
        client.incr("ti.finish.d.t.success", n)
        client.incr("ti.finish")  # a legacy duplicate: counted as skipped
        client.decr("dag_processing.processes", n)
        client.timing("dag.d.t.duration", 250 * n)
        client.gauge("pool.open_slots.p", n)

    emit(1)  # the parent resolves (and caches) every recorder before it forks
    stop = threading.Event()
    busy_calls = []

    def busy():
        calls = 0
        while not stop.is_set():
            client.incr("busy")
            calls += 1
        busy_calls.append(calls)

    thread = threading.Thread(target=busy)
    thread.start()
    children = []
    for _ in range(5):
        pid = os.fork()
        if pid == 0:  # the child writes with fresh recorders into its own files
            emit(10)
            os._exit(0)
        children.append(pid)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    stop.set()
    thread.join()
    emit(100)
    print(json.dumps({"parent": os.getpid(), "children": children, "busy": busy_calls[0]}))
"""


def samples(path: Path) -> dict[tuple[str, str], float]:
    """Return {(sample name, labels as JSON): value} of one file."""
    found: dict[tuple[str, str], float] = {}
    for key, (value, _stamp) in file_values(path).items():
        _name, sample, labels, _help = json.loads(key)
        found[(sample, json.dumps(labels, sort_keys=True))] = value
    return found


def test_each_process_writes_its_own_files_across_forks(tmp_path: Path) -> None:
    """A parent that cached its recorders, forked 5 times while a thread wrote, and each child write only into their own process's files."""
    ran = run_multiprocess(ACROSS_FORK, tmp_path)
    finish = ("airflow_ti_finish_total", '{"dag_id": "d", "state": "success", "task_id": "t"}')
    decremented = ("airflow_dag_processing_processes_decremented_total", "{}")
    skipped = (
        "mlwf_stats_bridge_skipped_total",
        '{"reason": "legacy_duplicate", "stat": "ti.finish"}',
    )
    duration = '{"dag_id": "d", "task_id": "t"}'
    processes = [(ran["parent"], 101, 2, ran["busy"])]
    processes += [(child, 10, 1, 0) for child in ran["children"]]
    for pid, n, calls, busy in processes:
        counters = samples(tmp_path / f"counter_{pid}.db")
        assert counters[finish] == counters[decremented] == n
        assert counters[skipped] == calls
        assert counters.get(("airflow_busy_total", "{}"), 0.0) == busy
        histogram = samples(tmp_path / f"histogram_{pid}.db")
        assert histogram[("airflow_task_duration_seconds_sum", duration)] == 0.25 * n
        assert sum(v for (s, _), v in histogram.items() if s.endswith("_bucket")) == calls
        gauges = samples(tmp_path / f"gauge_livemostrecent_{pid}.db")
        assert gauges == {
            ("airflow_pool_open_slots", '{"pool_name": "p"}'): 100.0 if busy else 10.0
        }
    assert ran["busy"] > 0


THREADS = """
    import json, threading
    from mlwf_stats_bridge import PrometheusStatsClient

    client = PrometheusStatsClient("localhost", 8125, "airflow", False)

    def hammer():
        for _ in range(20_000):
            client.incr("ti.finish.d.t.success")
            client.timing("dag.d.t.duration", 500)  # 0.5 s: sums exactly

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("{}")
"""


def test_concurrent_writes_in_multiprocess_mode_are_not_lost(tmp_path: Path) -> None:
    """4 threads of 20,000 increments and timings in multiprocess mode: the files hold all 80,000 of each."""
    run_multiprocess(THREADS, tmp_path)
    counters = metric_values(tmp_path, "airflow_ti_finish")
    assert [v for v, _ in counters.values()] == [80_000.0]
    histogram = metric_values(tmp_path, "airflow_task_duration_seconds")
    assert sum(v for (s, _), (v, _) in histogram.items() if s == "<m>_bucket") == 80_000
    assert histogram[("<m>_sum", json.dumps({"dag_id": "d", "task_id": "t"}))][0] == 40_000.0


def test_the_recorder_cache_is_bounded_and_names_past_it_still_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream of new names fills the recorder cache up to its limit and no further; names past the limit are resolved on each call and counted exactly."""
    monkeypatch.setattr(_client, "_CACHE_LIMIT", 50)
    client = PrometheusStatsClient(
        "localhost", 8125, "airflow", False, registry=CollectorRegistry(), max_series=10_000
    )
    for _ in range(3):
        for i in range(120):
            client.incr(f"ti.start.d.t{i}")
            client.timing(f"dag.d.t{i}.duration", 1000)
            client.gauge(f"pool.open_slots.p{i}", i, delta=True)
    assert sum(len(cached) for cached in client._recorders.values()) == 50
    registry = client.registry
    for i in range(120):
        labels = {"dag_id": "d", "task_id": f"t{i}"}
        assert registry.get_sample_value("airflow_ti_start_total", labels) == 3
        assert registry.get_sample_value("airflow_task_duration_seconds_count", labels) == 3
        assert registry.get_sample_value("airflow_pool_open_slots", {"pool_name": f"p{i}"}) == 3 * i


FORK_WHILE_FOREIGN_WRITE = """
    import json, os, threading, time
    from prometheus_client import values
    from mlwf_stats_bridge import PrometheusStatsClient
    from mlwf_stats_bridge._writers import multiprocess_lock

    client = PrometheusStatsClient("localhost", 8125, "airflow", False)
    client.incr("ti.finish.d.t.success")
    lock = multiprocess_lock(values.ValueClass)
    assert lock is not None
    held, release = threading.Event(), threading.Event()

    def foreign_write():  # another library of the process, mid-write of its own metric
        with lock:
            held.set()
            release.wait()

    writer = threading.Thread(target=foreign_write)
    writer.start()
    held.wait()
    threading.Timer(0.5, release.set).start()
    pid = os.fork()  # waits for the foreign write to end, then forks with the lock free
    if pid == 0:
        client.incr("ti.finish.d.t.success")  # would block for ever on an inherited held lock
        os._exit(0)
    started = time.monotonic()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - started > 20:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            print(json.dumps({"child": "deadlocked"}))
            raise SystemExit(0)
        time.sleep(0.05)
    writer.join()
    print(json.dumps({"child": os.waitstatus_to_exitcode(status), "pid": pid}))
"""


def test_a_fork_during_another_libraries_metric_write_leaves_the_child_a_free_lock(
    tmp_path: Path,
) -> None:
    """prometheus_client's lock, held by another thread's write at fork(), is not inherited held: the child records."""
    ran = run_multiprocess(FORK_WHILE_FOREIGN_WRITE, tmp_path)
    assert ran["child"] == 0, ran
    counters = samples(tmp_path / f"counter_{ran['pid']}.db")
    finish = ("airflow_ti_finish_total", '{"dag_id": "d", "state": "success", "task_id": "t"}')
    assert counters[finish] == 1
