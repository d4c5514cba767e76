"""The series cap holds on the merged exposition of many processes, not only within each one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlwf_stats_bridge import OVERFLOW, InvalidSettingError, exposition
from mlwf_stats_bridge._exposition import compact_dead_processes

# One "task process": records one label set of its own in a counter, a histogram and a gauge.
TASK = textwrap.dedent(
    """
    import sys
    from mlwf_stats_bridge import PrometheusStatsClient
    client = PrometheusStatsClient("localhost", 8125, "airflow", False)
    task = sys.argv[1]
    client.incr(f"ti.start.d.{task}")
    client.timing(f"dag.d.{task}.duration", 1500)
    client.gauge(f"pool.open_slots.{task}", 7)
    client.incr("scheduler_heartbeat")
    if len(sys.argv) > 2:
        print("ready", flush=True)
        sys.stdin.read()  # stay alive until the test closes stdin
    """
)


def env_for(directory: Path, cap: int) -> dict[str, str]:
    return dict(
        os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory), MLWF_STATS_BRIDGE_MAX_SERIES=str(cap)
    )


def run_tasks(directory: Path, tasks: list[str], cap: int) -> None:
    """Run one real process per task, all at once, each writing its own files, and wait for them."""
    processes = [
        subprocess.Popen([sys.executable, "-c", TASK, task], env=env_for(directory, cap))
        for task in tasks
    ]
    for process in processes:
        assert process.wait(timeout=120) == 0


def label_sets(text: str, sample: str) -> dict[str, float]:
    """Return {label text: value} of every series of ``sample`` in an exposition."""
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(rf"^{re.escape(sample)}\{{(.*)\}} (\S+)$", text, re.M)
    }


def overflow(*names: str) -> str:
    return ",".join(f'{name}="{OVERFLOW}"' for name in names)


def test_twenty_processes_with_cap_two_expose_two_series_and_overflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 6: 20 processes under cap 2 expose 2 label sets per metric plus __overflow__, with totals and the folded count kept."""
    monkeypatch.setenv("MLWF_STATS_BRIDGE_MAX_SERIES", "2")  # the scraping process's cap
    tasks = [f"t{i:02d}" for i in range(20)]
    run_tasks(tmp_path, tasks, cap=2)
    text = exposition(tmp_path).decode()

    starts = label_sets(text, "airflow_ti_start_total")
    # The first label sets seen, in sorted order, are kept; the other 18 add up in __overflow__.
    assert starts == {
        'dag_id="d",task_id="t00"': 1.0,
        'dag_id="d",task_id="t01"': 1.0,
        overflow("dag_id", "task_id"): 18.0,
    }
    counts = label_sets(text, "airflow_task_duration_seconds_count")
    assert counts == {
        'dag_id="d",task_id="t00"': 1.0,
        'dag_id="d",task_id="t01"': 1.0,
        overflow("dag_id", "task_id"): 18.0,
    }
    inf_buckets = {
        k: v
        for k, v in label_sets(text, "airflow_task_duration_seconds_bucket").items()
        if 'le="+Inf"' in k
    }
    assert len(inf_buckets) == 3 and sum(inf_buckets.values()) == 20
    # Unlabelled metrics are one series whatever the cap.
    assert "airflow_scheduler_heartbeat_total 20.0" in text
    folded = label_sets(text, "mlwf_stats_bridge_folded_series_total")
    assert folded == {
        'metric="airflow_ti_start"': 18.0,
        'metric="airflow_task_duration_seconds"': 18.0,
        'metric="airflow_pool_open_slots"': 18.0,
    }
    # The archive holds the folded form: the directory stays bounded too.
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]

    # Later processes with label sets that sort first never displace the kept ones.
    run_tasks(tmp_path, ["a0", "t00"], cap=2)
    text = exposition(tmp_path).decode()
    assert label_sets(text, "airflow_ti_start_total") == {
        'dag_id="d",task_id="t00"': 2.0,
        'dag_id="d",task_id="t01"': 1.0,
        overflow("dag_id", "task_id"): 19.0,
    }
    assert (
        label_sets(text, "mlwf_stats_bridge_folded_series_total")['metric="airflow_ti_start"']
        == 19.0
    )
    # Scraping again changes nothing.
    assert exposition(tmp_path).decode() == text


def test_live_processes_are_capped_and_the_folded_count_survives_their_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 6: gauges of 5 live processes under cap 2 show 2 label sets plus __overflow__, and the folded count does not drop when they exit."""
    monkeypatch.setenv("MLWF_STATS_BRIDGE_MAX_SERIES", "2")
    live = [
        subprocess.Popen(
            [sys.executable, "-c", TASK, f"p{i}", "stay"],
            env=env_for(tmp_path, 2),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(5)
    ]
    try:
        for process in live:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        text = exposition(tmp_path).decode()
        assert label_sets(text, "airflow_pool_open_slots") == {
            'pool_name="p0"': 7.0,
            'pool_name="p1"': 7.0,
            overflow("pool_name"): 7.0,
        }
        folded = label_sets(text, "mlwf_stats_bridge_folded_series_total")
        assert folded['metric="airflow_pool_open_slots"'] == 3.0
        assert folded['metric="airflow_ti_start"'] == 3.0
    finally:
        for process in live:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=30)
    text = exposition(tmp_path).decode()
    assert "airflow_pool_open_slots{" not in text  # gauges of dead processes are gone
    folded = label_sets(text, "mlwf_stats_bridge_folded_series_total")
    assert folded['metric="airflow_pool_open_slots"'] == 3.0
    assert folded['metric="airflow_ti_start"'] == 3.0
    assert label_sets(text, "airflow_ti_start_total")[overflow("dag_id", "task_id")] == 3.0


def test_a_bad_cap_at_exposition_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-positive cap for the exposition raises InvalidSettingError naming the variable or argument."""
    monkeypatch.setenv("MLWF_STATS_BRIDGE_MAX_SERIES", "-1")
    with pytest.raises(InvalidSettingError, match="MLWF_STATS_BRIDGE_MAX_SERIES"):
        exposition(tmp_path)
    with pytest.raises(InvalidSettingError, match="max_series"):
        exposition(tmp_path, max_series=0)


# One "task process" recording names without a mapping rule (the arguments) and a rule-mapped one.
NAMES_TASK = textwrap.dedent(
    """
    import sys
    from mlwf_stats_bridge import PrometheusStatsClient
    client = PrometheusStatsClient("localhost", 8125, "airflow", False)
    for name in sys.argv[1:]:
        client.incr(name)
    client.incr("scheduler_heartbeat")
    """
)


def run_name_tasks(directory: Path, tasks: list[list[str]], max_unmapped: int) -> None:
    """Run one real process per list of names, all at once, and wait for them."""
    env = dict(
        os.environ,
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        MLWF_STATS_BRIDGE_MAX_UNMAPPED=str(max_unmapped),
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", NAMES_TASK, *names], env=env) for names in tasks
    ]
    for process in processes:
        assert process.wait(timeout=120) == 0


def exposed_job_counters(text: str) -> dict[str, float]:
    """Return {sample: value} of the airflow_job_* counters of an exposition."""
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(airflow_job_\w+_total) (\S+)$", text, re.M)
    }


def archived_metrics(directory: Path) -> set[str]:
    """Return the metric names held in the counter archive."""
    from prometheus_client.mmap_dict import MmapedDict

    path = directory / "counter_archive.db"
    return {
        json.loads(key)[0]
        for key, _value, _stamp, _pos in MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
    }


def test_names_without_a_rule_are_bounded_across_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes each within a budget of 3 names without a rule expose only 3 together; admitted names stay across scrapes, later ones never displace them, and refused ones are not archived."""
    monkeypatch.setenv("MLWF_STATS_BRIDGE_MAX_UNMAPPED", "3")  # the scraping process's budget
    run_name_tasks(
        tmp_path,
        [["job.c1", "job.b1", "job.a1"], ["job.c2", "job.b2", "job.a2", "job.d2"]],
        max_unmapped=3,
    )
    text = exposition(tmp_path).decode()
    # The first names seen, in sorted order, are admitted; the second process dropped job.d2 itself.
    assert exposed_job_counters(text) == {
        "airflow_job_a1_total": 1.0,
        "airflow_job_a2_total": 1.0,
        "airflow_job_b1_total": 1.0,
    }
    assert "# HELP airflow_job_a1_total StatsD name job.a1 without a mapping rule" in text
    assert "mlwf_stats_bridge_refused_unmapped_metrics 3.0" in text  # b2, c1, c2
    assert "mlwf_stats_bridge_dropped_unmapped_total 1.0" in text  # d2, in its process
    assert "airflow_scheduler_heartbeat_total 2.0" in text  # rule-mapped: never refused
    # Compaction archived the admitted names only: the directory stays bounded.
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["counter_archive.db"]
    jobs = {m for m in archived_metrics(tmp_path) if m.startswith("airflow_job_")}
    assert jobs == {"airflow_job_a1", "airflow_job_a2", "airflow_job_b1"}
    state = json.loads((tmp_path / ".mlwf-stats-bridge-series.json").read_text())
    assert state["version"] == 1
    assert state["unmapped"] == ["airflow_job_a1", "airflow_job_a2", "airflow_job_b1"]

    # A later process with a name that sorts first never displaces an admitted one.
    run_name_tasks(tmp_path, [["job.a0", "job.a1", "job.c1"]], max_unmapped=3)
    text = exposition(tmp_path).decode()
    assert exposed_job_counters(text) == {
        "airflow_job_a1_total": 2.0,
        "airflow_job_a2_total": 1.0,
        "airflow_job_b1_total": 1.0,
    }
    assert (
        "mlwf_stats_bridge_refused_unmapped_metrics 2.0" in text
    )  # a0, c1: in this scrape's files
    again = exposition(tmp_path).decode()
    assert exposed_job_counters(again) == exposed_job_counters(text)
    assert "mlwf_stats_bridge_refused_unmapped_metrics 0.0" in again  # a snapshot: none left
    jobs = {m for m in archived_metrics(tmp_path) if m.startswith("airflow_job_")}
    assert jobs == {"airflow_job_a1", "airflow_job_a2", "airflow_job_b1"}


def test_a_state_file_without_unmapped_names_still_loads(tmp_path: Path) -> None:
    """A series file written before the unmapped budget existed keeps its admitted label sets, and compaction with max_unmapped adds the admitted names to it."""
    state = tmp_path / ".mlwf-stats-bridge-series.json"
    admitted = {"airflow_ti_start": [[["dag_id", "d"], ["task_id", "t5"]]]}
    state.write_text(json.dumps({"version": 1, "metrics": admitted}))
    run_name_tasks(
        tmp_path, [["ti.start.d.t0", "ti.start.d.t5", "job.y", "job.x"]], max_unmapped=10
    )
    # Each process records under the default caps; the scraper's are 1 series and 1 name.
    assert compact_dead_processes(tmp_path, max_series=1, max_unmapped=1) == 1
    text = exposition(tmp_path, max_series=1, max_unmapped=1).decode()
    assert label_sets(text, "airflow_ti_start_total") == {
        'dag_id="d",task_id="t5"': 1.0,  # from the old file: t0 would sort first
        overflow("dag_id", "task_id"): 1.0,
    }
    assert exposed_job_counters(text) == {"airflow_job_x_total": 1.0}
    saved = json.loads(state.read_text())
    assert saved["metrics"]["airflow_ti_start"] == admitted["airflow_ti_start"]
    assert saved["unmapped"] == ["airflow_job_x"]


def test_a_bad_unmapped_budget_at_exposition_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-positive budget of names without a rule raises InvalidSettingError naming the variable or argument."""
    monkeypatch.setenv("MLWF_STATS_BRIDGE_MAX_UNMAPPED", "0")
    with pytest.raises(InvalidSettingError, match="MLWF_STATS_BRIDGE_MAX_UNMAPPED"):
        exposition(tmp_path)
    with pytest.raises(InvalidSettingError, match="MLWF_STATS_BRIDGE_MAX_UNMAPPED"):
        compact_dead_processes(tmp_path)
    monkeypatch.delenv("MLWF_STATS_BRIDGE_MAX_UNMAPPED")
    with pytest.raises(InvalidSettingError, match="max_unmapped"):
        exposition(tmp_path, max_unmapped=0)


# A process running the calls of its arguments ("incr:<name>", "gauge:<name>:<value>") under the
# rules of MLWF_STATS_BRIDGE_RULES if set; with "stay" last it stays alive until stdin closes.
CALLS_TASK = textwrap.dedent(
    """
    import sys
    from mlwf_stats_bridge import PrometheusStatsClient
    client = PrometheusStatsClient("localhost", 8125, "airflow", False)
    for call in sys.argv[1:]:
        if call == "stay":
            print("ready", flush=True)
            sys.stdin.read()
            break
        kind, name, *value = call.split(":")
        if kind == "incr":
            client.incr(name)
        else:
            client.gauge(name, float(value[0]))
    """
)


def calls_env(directory: Path, rules: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    env.pop("MLWF_STATS_BRIDGE_RULES", None)
    env.pop("MLWF_STATS_BRIDGE_MAX_UNMAPPED", None)  # each process: the default budget
    if rules is not None:
        env["MLWF_STATS_BRIDGE_RULES"] = str(rules)
    return env


def run_calls(directory: Path, *calls: str, rules: Path | None = None) -> None:
    """Run one real process making ``calls`` and wait for it."""
    process = subprocess.Popen(
        [sys.executable, "-c", CALLS_TASK, *calls], env=calls_env(directory, rules)
    )
    assert process.wait(timeout=120) == 0


def start_calls(directory: Path, *calls: str, rules: Path | None = None) -> subprocess.Popen[str]:
    """Start one real process making ``calls`` that stays alive until its stdin is closed."""
    process = subprocess.Popen(
        [sys.executable, "-c", CALLS_TASK, *calls, "stay"],
        env=calls_env(directory, rules),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def stop(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=30) == 0


def test_a_lower_budget_later_never_removes_admitted_names(tmp_path: Path) -> None:
    """Names admitted under a budget of 3 stay exposed, with their archived totals, when a compaction runs with 1 and a scrape with 2; the lower budget only refuses new names."""
    run_calls(tmp_path, "incr:job.a", "incr:job.b", "incr:job.c")
    text = exposition(tmp_path, max_unmapped=3).decode()
    assert exposed_job_counters(text) == {
        "airflow_job_a_total": 1.0,
        "airflow_job_b_total": 1.0,
        "airflow_job_c_total": 1.0,
    }
    run_calls(tmp_path, "incr:job.a", "incr:job.c", "incr:job.d")
    assert compact_dead_processes(tmp_path, max_unmapped=1) == 1
    text = exposition(tmp_path, max_unmapped=2).decode()
    assert exposed_job_counters(text) == {
        "airflow_job_a_total": 2.0,
        "airflow_job_b_total": 1.0,
        "airflow_job_c_total": 2.0,
    }
    jobs = {m for m in archived_metrics(tmp_path) if m.startswith("airflow_job_")}
    assert jobs == {"airflow_job_a", "airflow_job_b", "airflow_job_c"}
    state = json.loads((tmp_path / ".mlwf-stats-bridge-series.json").read_text())
    assert state["unmapped"] == ["airflow_job_a", "airflow_job_b", "airflow_job_c"]


def test_a_name_exempt_while_a_rule_produced_it_stays_exposed_after_that_process_dies(
    tmp_path: Path,
) -> None:
    """A name exposed because a live process records it from a rule (a gauge) stays admitted, past the budget of 1, when that process dies: its archived counter of the name without a rule is kept."""
    rules = tmp_path / "rules.txt"
    rules.write_text("custom.x job_x\n")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    run_calls(metrics, "incr:job.a")
    assert exposed_job_counters(exposition(metrics, max_unmapped=1).decode()) == {
        "airflow_job_a_total": 1.0
    }
    mapped = start_calls(metrics, "gauge:custom.x:7", rules=rules)
    try:
        run_calls(metrics, "incr:job.x")  # no rule in this process: the budget applies to it
        text = exposition(metrics, max_unmapped=1).decode()
        assert exposed_job_counters(text)["airflow_job_x_total"] == 1.0
        assert "mlwf_stats_bridge_refused_unmapped_metrics 0.0" in text
    finally:
        stop(mapped)
    text = exposition(metrics, max_unmapped=1).decode()
    assert exposed_job_counters(text) == {"airflow_job_a_total": 1.0, "airflow_job_x_total": 1.0}
    assert "airflow_job_x_total" in {m + "_total" for m in archived_metrics(metrics)}
    state = json.loads((metrics / ".mlwf-stats-bridge-series.json").read_text())
    assert state["unmapped"] == ["airflow_job_a", "airflow_job_x"]


def test_archived_names_stay_exposed_when_the_state_file_is_lost(tmp_path: Path) -> None:
    """After the state file is deleted, names in the archive are admitted again past the budget, before a new name that sorts first; only the new one is refused."""
    run_calls(tmp_path, "incr:job.b", "incr:job.c")
    exposition(tmp_path, max_unmapped=2)
    (tmp_path / ".mlwf-stats-bridge-series.json").unlink()
    run_calls(tmp_path, "incr:job.a")
    text = exposition(tmp_path, max_unmapped=2).decode()
    assert exposed_job_counters(text) == {"airflow_job_b_total": 1.0, "airflow_job_c_total": 1.0}
    assert "mlwf_stats_bridge_refused_unmapped_metrics 1.0" in text
    jobs = {m for m in archived_metrics(tmp_path) if m.startswith("airflow_job_")}
    assert jobs == {"airflow_job_b", "airflow_job_c"}
    state = json.loads((tmp_path / ".mlwf-stats-bridge-series.json").read_text())
    assert state["unmapped"] == ["airflow_job_b", "airflow_job_c"]


def test_a_name_some_process_records_from_a_rule_is_never_refused(tmp_path: Path) -> None:
    """One process records job.x without a rule, another from a rule giving the same name: with a budget of 1 spent on job.a, airflow_job_x is exposed with both counts, and stays admitted (past the budget) once both are gone; a new name is refused."""
    rules = tmp_path / "rules.txt"
    rules.write_text("job.x job_x\n")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    run_calls(metrics, "incr:job.a")
    exposition(metrics, max_unmapped=1)
    run_calls(metrics, "incr:job.x", rules=rules)
    run_calls(metrics, "incr:job.x", "incr:job.z")
    text = exposition(metrics, max_unmapped=1).decode()
    assert exposed_job_counters(text) == {"airflow_job_a_total": 1.0, "airflow_job_x_total": 2.0}
    assert "mlwf_stats_bridge_refused_unmapped_metrics 1.0" in text  # job.z
    state = json.loads((metrics / ".mlwf-stats-bridge-series.json").read_text())
    assert state["unmapped"] == ["airflow_job_a", "airflow_job_x"]
    run_calls(metrics, "incr:job.x")  # without the rule, and no process with it left
    text = exposition(metrics, max_unmapped=1).decode()
    assert exposed_job_counters(text) == {"airflow_job_a_total": 1.0, "airflow_job_x_total": 3.0}


def test_a_rule_mapped_metric_is_never_refused_after_the_same_name_without_a_rule(
    tmp_path: Path,
) -> None:
    """A process records "scheduler.heartbeat" (no rule) before "scheduler_heartbeat" (a built-in rule); with the budget of 1 spent on job.a, the rule-mapped airflow_scheduler_heartbeat is exposed and only the renamed name without a rule is refused."""
    run_calls(tmp_path, "incr:job.a")
    exposition(tmp_path, max_unmapped=1)
    run_calls(tmp_path, "incr:scheduler.heartbeat", "incr:scheduler_heartbeat")
    text = exposition(tmp_path, max_unmapped=1).decode()
    assert "airflow_scheduler_heartbeat_total 1.0" in text
    assert (
        "# HELP airflow_scheduler_heartbeat_total Airflow StatsD metric scheduler_heartbeat" in text
    )
    assert "airflow_scheduler_heartbeat_unmapped" not in text
    assert "mlwf_stats_bridge_refused_unmapped_metrics 1.0" in text
