"""Scrapes fold the files of dead processes into archives: the directory stays small, totals stay exact."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from mlwf_stats_bridge._exposition import compact_dead_processes, exposition

TASK = textwrap.dedent(
    """
    import sys, time
    from mlwf_stats_bridge import PrometheusStatsClient
    client = PrometheusStatsClient("localhost", 8125, "airflow", False)
    for _ in range(int(sys.argv[1])):
        client.incr("ti.finish.d.t.success")
    client.timing("dag.d.t.duration", 1500)
    if len(sys.argv) > 2:
        print("ready", flush=True)
        time.sleep(60)
    """
)


def run_task(directory: Path, increments: int) -> None:
    """Run one short-lived 'task process' that records metrics in multiprocess mode, then exits."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    subprocess.run([sys.executable, "-c", TASK, str(increments)], env=env, check=True, timeout=60)


def sample(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found, f"{name} not in exposition:\n{text}"
    return float(found.group(1))


FINISH = 'airflow_ti_finish_total{dag_id="d",state="success",task_id="t"}'
DURATION_COUNT = 'airflow_task_duration_seconds_count{dag_id="d",task_id="t"}'


def test_dead_processes_are_folded_and_totals_are_kept(tmp_path: Path) -> None:
    """After three task processes exit, a scrape leaves only archives and reports the exact sums."""
    for n in (1, 2, 3):
        run_task(tmp_path, n)
    assert len(list(tmp_path.glob("counter_*.db"))) == 3
    text = exposition(tmp_path).decode()
    assert sample(text, FINISH) == 6
    assert sample(text, DURATION_COUNT) == 3
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]

    run_task(tmp_path, 4)  # a fourth process after compaction adds to the archive
    text = exposition(tmp_path).decode()
    assert sample(text, FINISH) == 10
    assert sample(text, DURATION_COUNT) == 4
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]


def test_live_processes_are_not_folded(tmp_path: Path) -> None:
    """A process that is still running keeps its own files; its values are counted once."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    live = subprocess.Popen(
        [sys.executable, "-c", TASK, "5", "stay"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert live.stdout is not None and live.stdout.readline().strip() == "ready"
        run_task(tmp_path, 2)
        text = exposition(tmp_path).decode()
        assert sample(text, FINISH) == 7
        assert (tmp_path / f"counter_{live.pid}.db").exists()
        assert compact_dead_processes(tmp_path) == 0  # nothing dead left to fold
    finally:
        live.kill()
        live.wait(timeout=30)
    assert sample(exposition(tmp_path).decode(), FINISH) == 7
    assert not (tmp_path / f"counter_{live.pid}.db").exists()


HOLD_LOCK = textwrap.dedent(
    """
    import fcntl, sys, time
    with open(sys.argv[1], "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


def test_compaction_skips_while_another_process_scrapes(tmp_path: Path) -> None:
    """While another process holds the directory's scrape lock, compaction skips; afterwards it folds."""
    run_task(tmp_path, 1)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / ".mlwf-stats-bridge.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert compact_dead_processes(tmp_path) == 0
        assert len(list(tmp_path.glob("counter_*.db"))) == 1
    finally:
        holder.communicate("\n", timeout=30)
    assert compact_dead_processes(tmp_path) == 2  # the dead process's counter and histogram files
    assert sample(exposition(tmp_path).decode(), FINISH) == 1
