"""The StatsD client: statsd API parity, values in the registry, no UDP, cap, threads and fork."""

from __future__ import annotations

import inspect
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import statsd
from mlwf_stats_bridge import (
    DEFAULT_MAX_UNMAPPED,
    MAX_UNMAPPED_ENV,
    OVERFLOW,
    InvalidSettingError,
    InvalidStatError,
    PrometheusStatsClient,
    Rule,
    exposition,
)
from prometheus_client import CollectorRegistry


def assert_in_forked_child(check: Callable[[], bool]) -> None:
    """Fork; ``check()`` runs in the child, which reports through a pipe; assert it held."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            ok = check()
        except BaseException:
            ok = False
        os.write(write, b"ok" if ok else b"bad")
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        assert pipe.read() == b"ok"
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def value(client: PrometheusStatsClient, name: str, **labels: str) -> float | None:
    return client.registry.get_sample_value(name, labels)


def new_client(**kwargs: object) -> PrometheusStatsClient:
    return PrometheusStatsClient("localhost", 8125, "airflow", False, **kwargs)  # type: ignore[arg-type]


def test_public_api_matches_statsclient() -> None:
    """Every public method of statsd.StatsClient exists on the bridge with compatible parameters."""
    for name, method in inspect.getmembers(statsd.StatsClient, inspect.isfunction):
        if name.startswith("_"):
            continue
        ours = inspect.signature(getattr(PrometheusStatsClient, name))
        theirs = inspect.signature(method)
        assert list(ours.parameters)[: len(theirs.parameters)] == list(theirs.parameters), name
    assert issubclass(PrometheusStatsClient, statsd.StatsClient)


def test_nothing_is_sent_over_udp() -> None:
    """Calls through every API path send no datagram to the configured host and port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    client = PrometheusStatsClient("127.0.0.1", port, "airflow", False)
    client.incr("a")
    client.gauge("b", -3)
    client.timing("c", 5)
    with client.timer("d"):
        pass
    with client.pipeline() as pipe:
        pipe.incr("e")
    client._send_stat("f", "1|c", 1)
    client._after("airflow.g:1|c")
    with pytest.raises(TimeoutError):
        listener.recvfrom(1024)
    listener.close()
    assert value(client, "airflow_f_total") == 1 and value(client, "airflow_g_total") == 1


def test_airflow_positional_construction_puts_ipv6_in_maxudpsize() -> None:
    """Constructed like Airflow does, (host, port, prefix, ipv6), the client works and opens no socket."""
    client = PrometheusStatsClient("no-such-host.invalid", 8125, "airflow", True)
    client.incr("x")
    assert client._sock is None and value(client, "airflow_x_total") == 1


def test_counters_count_every_call_ignoring_rate() -> None:
    """A sampled increment counts its actual value: the registry sees every call."""
    client = new_client()
    for _ in range(100):
        client.incr("ti.finish.d.t.success", 2, rate=0.01)
    assert value(client, "airflow_ti_finish_total", dag_id="d", task_id="t", state="success") == 200


def test_decrements_go_to_a_decremented_counter() -> None:
    """decr adds to <name>_decremented_total so the net StatsD value is total minus decremented."""
    client = new_client()
    client.incr("dag_processing.processes", 3)
    client.decr("dag_processing.processes")
    assert value(client, "airflow_dag_processing_processes_total") == 3
    assert value(client, "airflow_dag_processing_processes_decremented_total") == 1


def test_gauges_absolute_and_delta() -> None:
    """Absolute gauges set, delta gauges add, negative absolute values are kept."""
    client = new_client()
    client.gauge("pool.open_slots.p", 5)
    client.gauge("pool.open_slots.p", -2, delta=True)
    client.gauge("pool.open_slots.p", 1, delta=True)
    client.gauge("executor.open_slots.LocalExecutor", -4)
    assert value(client, "airflow_pool_open_slots", pool_name="p") == 4
    assert value(client, "airflow_executor_open_slots", executor="LocalExecutor") == -4


def test_timings_become_histograms_in_seconds() -> None:
    """Milliseconds and timedeltas are observed in seconds; timer works as context manager and decorator."""
    client = new_client()
    client.timing("dag.d.t.duration", 1500)
    client.timing("dag.d.t.duration", timedelta(seconds=2))
    with client.timer("scheduler.critical_section_duration"):
        pass

    @client.timer("scheduler.critical_section_duration")
    def work() -> int:
        return 7

    assert work() == 7
    assert value(client, "airflow_task_duration_seconds_sum", dag_id="d", task_id="t") == 3.5
    assert value(client, "airflow_task_duration_seconds_count", dag_id="d", task_id="t") == 2
    assert value(client, "airflow_scheduler_critical_section_duration_seconds_count") == 2


def test_pipelines_record_on_send_including_nested() -> None:
    """Pipeline calls are recorded only when sent, nested pipelines flush into their parent."""
    client = new_client()
    pipe = client.pipeline()
    pipe.incr("p.a")
    inner = pipe.pipeline()
    inner.gauge("p.g", 3)
    inner.send()
    assert value(client, "airflow_p_a_total") is None
    pipe.send()
    assert value(client, "airflow_p_a_total") == 1 and value(client, "airflow_p_g") == 3


def test_sets_count_distinct_values() -> None:
    """set() exposes the number of distinct values seen as <name>_distinct."""
    client = new_client()
    for member in ("a", "b", "a"):
        client.set("users", member)
    assert value(client, "airflow_users_distinct") == 2


def test_sets_of_skipped_names_are_counted_not_recorded() -> None:
    """A name the rules skip (Airflow's legacy duplicate ``ti.finish``) is skipped by set() too,
    as by incr/gauge/timing: counted in mlwf_stats_bridge_skipped_total, no family created."""
    client = new_client()
    client.set("ti.finish", "a")
    client.incr("ti.finish")
    skipped = {"stat": "ti.finish", "reason": "legacy_duplicate"}
    assert value(client, "mlwf_stats_bridge_skipped_total", **skipped) == 2
    assert value(client, "airflow_ti_finish_distinct") is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.incr("x", "1"), "must be a number"),
        (lambda c: c.gauge("x", None), "must be a number"),
        (lambda c: c.timing("x", "fast"), "must be a number"),
        (lambda c: c.incr(""), "non-empty string"),
        (lambda c: c._send("no colon"), "has no ':'"),
        (lambda c: c._send("x:1|q"), "not c, g, ms or s"),
        (lambda c: c._send("x:abc|c"), "is not a number"),
    ],
)
def test_bad_input_raises_invalid_stat(call: object, message: str) -> None:
    """Non-numeric values, empty names and malformed StatsD lines raise InvalidStatError."""
    with pytest.raises(InvalidStatError, match=message):
        call(new_client())  # type: ignore[operator]


def test_series_beyond_the_cap_fold_into_overflow() -> None:
    """New label sets past max_series go to the __overflow__ series and are counted as dropped."""
    client = new_client(max_series=3)
    for i in range(10):
        client.incr(f"ti.start.d.t{i}")
    client.incr("ti.start.d.t0")
    assert value(client, "airflow_ti_start_total", dag_id="d", task_id="t0") == 2
    assert value(client, "airflow_ti_start_total", dag_id=OVERFLOW, task_id=OVERFLOW) == 7
    assert value(client, "mlwf_stats_bridge_dropped_series_total", metric="airflow_ti_start") == 7


def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-positive cap from the environment or argument raises InvalidSettingError naming it."""
    monkeypatch.setenv("MLWF_STATS_BRIDGE_MAX_SERIES", "zero")
    with pytest.raises(InvalidSettingError, match="MLWF_STATS_BRIDGE_MAX_SERIES"):
        new_client()
    monkeypatch.delenv("MLWF_STATS_BRIDGE_MAX_SERIES")
    with pytest.raises(InvalidSettingError, match="max_series"):
        new_client(max_series=0)
    monkeypatch.setenv("MLWF_STATS_BRIDGE_LEGACY_NAMES", "maybe")
    with pytest.raises(InvalidSettingError, match="MLWF_STATS_BRIDGE_LEGACY_NAMES"):
        new_client()


DROPPED_UNMAPPED = "mlwf_stats_bridge_dropped_unmapped_total"


def unmapped_families(client: PrometheusStatsClient) -> dict[str, str]:
    """Return {metric name: help text} of the client's families of names without a rule."""
    return {
        metric.name: metric.documentation
        for metric in client.registry.collect()
        if metric.documentation.endswith(" without a mapping rule (mlwf-stats-bridge)")
    }


def test_names_without_a_rule_past_the_budget_are_counted_not_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With max_unmapped=3, five names without a rule make three families; the other calls are counted as dropped, one warning names the setting and the rule file; rule-mapped names and existing families still record."""
    client = new_client(max_unmapped=3)
    names = ["job.7f3a", "job.0b1c", "job.e9d2", "job.4c4c", "job.a0a0"]
    with caplog.at_level("WARNING", logger="mlwf_stats_bridge._client"):
        for name in names:
            client.incr(name)
            client.incr(name, 2)
        client.incr("ti.finish.d.t.success")  # a rule maps it: never refused
        client.timing("dag.d.t.duration", 1000)
        client.incr("job.7f3a")  # an existing family keeps counting
        client.incr("job.ffff")  # one more new name: dropped, no second warning
    assert unmapped_families(client) == {
        "airflow_job_7f3a": "StatsD name job.7f3a without a mapping rule (mlwf-stats-bridge)",
        "airflow_job_0b1c": "StatsD name job.0b1c without a mapping rule (mlwf-stats-bridge)",
        "airflow_job_e9d2": "StatsD name job.e9d2 without a mapping rule (mlwf-stats-bridge)",
    }
    assert value(client, "airflow_job_7f3a_total") == 4
    assert value(client, "airflow_job_e9d2_total") == 3
    assert value(client, "airflow_job_4c4c_total") is None
    assert value(client, "airflow_job_a0a0_total") is None
    assert value(client, DROPPED_UNMAPPED) == 5  # 2 calls each of 2 names, 1 of a third
    assert value(client, "airflow_ti_finish_total", dag_id="d", task_id="t", state="success") == 1
    assert value(client, "airflow_task_duration_seconds_count", dag_id="d", task_id="t") == 1
    ti_finish = next(m for m in client.registry.collect() if m.name == "airflow_ti_finish")
    assert ti_finish.documentation == (
        "Airflow StatsD metric ti.finish.d.t.success (mlwf-stats-bridge)"
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert MAX_UNMAPPED_ENV in warnings[0] and "MLWF_STATS_BRIDGE_RULES" in warnings[0]
    assert "'job.4c4c'" in warnings[0]


def test_decrements_sets_gauges_and_timings_of_unmapped_names_respect_the_budget() -> None:
    """Every call kind, and the StatsD line catch-alls, count a family against max_unmapped; a decrement whose _decremented family has no room is dropped, the counter itself still counts."""
    client = new_client(max_unmapped=2)
    client.incr("u.a")  # family 1
    client.gauge("u.g", 1, delta=True)  # family 2: the budget is spent
    client.decr("u.a")  # would create airflow_u_a_decremented: dropped
    client.decr("u.a", 2)  # dropped again (the refusal is remembered)
    client.incr("u.a")
    client.gauge("u.g", 5)  # the same gauge family, absolute: recorded
    client.gauge("u.g", 2, delta=True)
    client.gauge("u.h", 1, delta=True)
    client.gauge("u.i", 1)
    client.set("u.s", "x")
    client.set("u.s", "y")
    client.timing("u.t", 5)
    client.decr("u.d")
    client._send("u.line:1|c\nu.line:1|c")
    client._send_stat("u.member", "v|s", 1)
    client._after("airflow.u.gauge:+3|g")
    assert value(client, "airflow_u_a_total") == 2
    assert value(client, "airflow_u_a_decremented_total") is None
    assert value(client, "airflow_u_g") == 7
    for sample in (
        "airflow_u_h",
        "airflow_u_i",
        "airflow_u_s_distinct",
        "airflow_u_t_seconds_count",
        "airflow_u_d_total",
        "airflow_u_line_total",
        "airflow_u_member_distinct",
        "airflow_u_gauge",
    ):
        assert value(client, sample) is None, sample
    assert value(client, DROPPED_UNMAPPED) == 12
    assert sorted(unmapped_families(client)) == ["airflow_u_a", "airflow_u_g"]


def test_the_unmapped_budget_comes_from_the_environment_and_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """max_unmapped defaults to 500, is read from MLWF_STATS_BRIDGE_MAX_UNMAPPED, and a value below 1 raises InvalidSettingError naming the variable or argument."""
    monkeypatch.delenv(MAX_UNMAPPED_ENV, raising=False)
    assert new_client().max_unmapped == DEFAULT_MAX_UNMAPPED == 500
    monkeypatch.setenv(MAX_UNMAPPED_ENV, "7")
    assert new_client().max_unmapped == 7
    for bad in ("0", "-3", "many"):
        monkeypatch.setenv(MAX_UNMAPPED_ENV, bad)
        with pytest.raises(InvalidSettingError, match=MAX_UNMAPPED_ENV):
            new_client()
    monkeypatch.delenv(MAX_UNMAPPED_ENV)
    with pytest.raises(InvalidSettingError, match="max_unmapped must be at least 1, got 0"):
        new_client(max_unmapped=0)


def test_refused_names_do_not_fill_the_recorder_cache() -> None:
    """With max_unmapped=1, a stream of refused unique names takes no slot of the recorder cache: names recorded later are still cached."""
    client = new_client(max_unmapped=1)
    client.incr("job.first")
    for i in range(2000):
        client.incr(f"job.{i:032x}")
        client.gauge(f"job.{i:032x}", 1)
        client.timing(f"job.{i:032x}", 1)
    assert client._cached == 1
    client.incr("ti.finish.d.t.success")
    assert client._cached == 2 and "ti.finish.d.t.success" in client._recorders["c"]
    assert value(client, DROPPED_UNMAPPED) == 6000
    assert value(client, "airflow_job_first_total") == 1


def help_of(client: PrometheusStatsClient, name: str) -> str:
    return next(m.documentation for m in client.registry.collect() if m.name == name)


@pytest.mark.parametrize("unmapped_first", [True, False])
def test_a_name_without_a_rule_never_takes_the_family_of_a_rule(
    unmapped_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """ "scheduler.heartbeat" (no rule) and "scheduler_heartbeat" (a built-in rule), "job.x" and a user rule giving job_x, "x.decremented" and the decrement of a rule "x": in either order the rule-mapped metric keeps its name and help text, the other is renamed with a warning."""
    client = new_client(rules=[Rule("custom.x", "job_x"), Rule("x", "x")])
    unmapped = [("incr", "scheduler.heartbeat"), ("incr", "job.x"), ("incr", "x.decremented")]
    mapped = [("incr", "scheduler_heartbeat"), ("incr", "custom.x"), ("decr", "x")]
    with caplog.at_level("WARNING", logger="mlwf_stats_bridge._client"):
        for method, name in unmapped + mapped if unmapped_first else mapped + unmapped:
            getattr(client, method)(name)
    for name, stat in [
        ("airflow_scheduler_heartbeat", "scheduler_heartbeat"),
        ("airflow_job_x", "custom.x"),
        ("airflow_x_decremented", "x"),
    ]:
        assert value(client, name + "_total") == 1, name
        assert help_of(client, name) == f"Airflow StatsD metric {stat} (mlwf-stats-bridge)"
    for name, stat in [
        ("airflow_scheduler_heartbeat_unmapped", "scheduler.heartbeat"),
        ("airflow_job_x_unmapped", "job.x"),
        ("airflow_x_decremented_unmapped", "x.decremented"),
    ]:
        assert value(client, name + "_total") == 1, name
        assert (
            help_of(client, name)
            == f"StatsD name {stat} without a mapping rule (mlwf-stats-bridge)"
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 3
    assert any(
        "'scheduler.heartbeat'" in w and "as 'airflow_scheduler_heartbeat_unmapped'" in w
        for w in warnings
    )


@pytest.mark.parametrize("unmapped_first", [True, False])
def test_a_renamed_family_of_a_rule_and_a_name_without_a_rule_are_kept_apart(
    unmapped_first: bool,
) -> None:
    """A rule family renamed for its labels (airflow_foo_by_none) and the name without a rule "foo.by.none" giving the same family name: in either order neither is recorded in the other's family."""
    client = new_client(rules=[Rule("a.{k}", "foo"), Rule("b", "foo")])
    client.incr("a.v")
    calls = ["foo.by.none", "b"] if unmapped_first else ["b", "foo.by.none"]
    for name in calls:
        client.incr(name)
    mapped_name = "airflow_foo_by_none_mapped" if unmapped_first else "airflow_foo_by_none"
    unmapped_name = "airflow_foo_by_none" if unmapped_first else "airflow_foo_by_none_unmapped"
    assert value(client, mapped_name + "_total") == 1
    assert help_of(client, mapped_name) == "Airflow StatsD metric b (mlwf-stats-bridge)"
    assert value(client, unmapped_name + "_total") == 1
    assert help_of(client, unmapped_name).startswith("StatsD name foo.by.none without")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_with_the_whole_unmapped_budget() -> None:
    """A parent that spent its budget of one forks: the child records a new name without a rule."""
    client = new_client(max_unmapped=1)
    client.incr("parent.only")
    client.incr("parent.refused")

    def in_child() -> bool:
        client.incr("child.only")
        client.incr("child.refused")
        return (
            value(client, "airflow_child_only_total") == 1
            and value(client, "airflow_child_refused_total") is None
            and value(client, DROPPED_UNMAPPED) == 1
        )

    assert_in_forked_child(in_child)
    assert value(client, "airflow_parent_refused_total") is None
    assert value(client, DROPPED_UNMAPPED) == 1


def test_concurrent_increments_are_not_lost() -> None:
    """8 threads of 20,000 each: increments on shared and new series lose nothing."""
    client = new_client(registry=CollectorRegistry())

    def hammer(n: int) -> None:
        for i in range(20_000):
            client.incr("ti.finish.d.t.success")
            if i % 1000 == 0:
                client.incr(f"ti.start.d.t{n}_{i}")

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (
        value(client, "airflow_ti_finish_total", dag_id="d", task_id="t", state="success")
        == 160_000
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_has_its_own_metrics_while_threads_write() -> None:
    """A child forked while other threads record starts empty, records, and never deadlocks."""
    own = new_client(registry=CollectorRegistry())  # a caller's registry must be reset too
    own.incr("own", 2)
    client = new_client()
    client.incr("before.fork", 5)
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            client.incr("busy")

    def in_child() -> bool:
        client.incr("child.only")
        return (
            value(own, "airflow_own_total") is None
            and value(client, "airflow_before_fork_total") is None
            and value(client, "airflow_child_only_total") == 1
        )

    threads = [threading.Thread(target=busy) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(20):
            assert_in_forked_child(in_child)  # no inherited counts, no lock held
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert value(client, "airflow_before_fork_total") == 5
    assert value(client, "airflow_child_only_total") is None


CHILD = """
import os, sys
from mlwf_stats_bridge import PrometheusStatsClient
c = PrometheusStatsClient("localhost", 8125, "airflow", False)
c.incr("ti.finish.d.t.success")
c.gauge("pool.open_slots.p", 3)
c.timing("dag.d.t.duration", 250)
if os.fork() == 0:
    c.incr("ti.finish.d.t.success", 10)
    os._exit(0)
os.wait()
"""


def test_multiprocess_mode_aggregates_processes_and_forks(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, counts of a process and its forked child add up in one exposition."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    for _ in range(2):
        subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, timeout=60)
    text = exposition(tmp_path).decode()
    assert 'airflow_ti_finish_total{dag_id="d",state="success",task_id="t"} 22.0' in text
    assert 'airflow_task_duration_seconds_count{dag_id="d",task_id="t"} 2.0' in text
    # Every writer is dead: their live gauges are removed, counters stay.
    assert "airflow_pool_open_slots{" not in text
    assert not list(tmp_path.glob("gauge_live*"))


def test_exposition_of_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    """Asking for the exposition of a directory that does not exist names the directory."""
    with pytest.raises(FileNotFoundError, match="nope"):
        exposition(tmp_path / "nope")
