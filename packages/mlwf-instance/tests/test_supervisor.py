"""The supervisor on real process trees: spawning, death detection, and reaping without orphans."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from mlwf_instance import ComponentDiedError, StopRequested, Supervisor

# A process that records its pid, spawns two children per level down to `depth`, and then sleeps.
# The leader ignores SIGTERM or not (argv[3]); every descendant ignores it; one grandchild
# leaves the process group (setsid), as daemonizing helpers do.
TREE = r"""
import os, signal, subprocess, sys, time
depth, marker_dir, leader_ignores = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
is_leader = os.environ.get("TREE_CHILD") != "1"
if not is_leader or leader_ignores:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("TREE_SETSID") == "1":
    os.setsid()
children = []
for i in range(2 if depth > 0 else 0):
    env = dict(os.environ, TREE_CHILD="1", TREE_SETSID="1" if (depth == 1 and i == 0) else "0")
    children.append(
        subprocess.Popen([sys.executable, sys.argv[0], str(depth - 1), marker_dir, "0"], env=env)
    )
open(os.path.join(marker_dir, str(os.getpid())), "w").close()
while True:
    time.sleep(0.1)
"""
EXPECTED = 1 + 2 + 4  # depth 2, two children per process


def _spawn_tree(supervisor: Supervisor, tmp_path: Path, leader_ignores: bool) -> list[int]:
    markers = tmp_path / "pids"
    markers.mkdir()
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    supervisor.spawn(
        "tree",
        [sys.executable, str(script), "2", str(markers), "1" if leader_ignores else "0"],
        env=dict(os.environ),
        log_path=tmp_path / "tree.log",
    )
    deadline = time.monotonic() + 30
    while len(list(markers.iterdir())) < EXPECTED:
        assert time.monotonic() < deadline, (tmp_path / "tree.log").read_text()
        time.sleep(0.1)
    return [int(p.name) for p in markers.iterdir()]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("leader_ignores", [True, False], ids=["leader-ignores", "leader-exits"])
def test_stop_reaps_a_tree_that_ignores_sigterm(tmp_path: Path, leader_ignores: bool) -> None:
    """stop() leaves no process of a tree whose members ignore SIGTERM, even ones that left the group."""
    supervisor = Supervisor()
    pids = _spawn_tree(supervisor, tmp_path, leader_ignores)
    assert all(_alive(pid) for pid in pids)
    killed = supervisor.stop(grace=1.0)
    assert [pid for pid in pids if _alive(pid)] == []
    # The leader may exit on SIGTERM, the six descendants never do: they needed SIGKILL.
    assert len(killed) >= EXPECTED - 1


def test_stop_of_a_well_behaved_process_needs_no_sigkill(tmp_path: Path) -> None:
    """A process that exits on SIGTERM is stopped within the grace period without SIGKILL."""
    supervisor = Supervisor()
    child = supervisor.spawn(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env=dict(os.environ),
        log_path=tmp_path / "sleeper.log",
    )
    assert supervisor.stop(grace=10.0) == []
    assert child.poll() is not None


def test_check_reports_a_dead_component_with_its_log(tmp_path: Path) -> None:
    """check() raises ComponentDiedError naming the component, its exit code and its last log lines."""
    supervisor = Supervisor()
    child = supervisor.spawn(
        "crasher",
        [sys.executable, "-c", "import sys; print('boom: bad config', flush=True); sys.exit(3)"],
        env=dict(os.environ),
        log_path=tmp_path / "crasher.log",
    )
    child.popen.wait(timeout=30)
    with pytest.raises(ComponentDiedError) as info:
        supervisor.check()
    assert info.value.name == "crasher"
    assert info.value.returncode == 3
    assert "boom: bad config" in str(info.value)
    supervisor.stop()


def test_wait_is_interrupted_by_the_stop_event(tmp_path: Path) -> None:
    """Setting the stop event makes wait() raise StopRequested promptly."""
    stop = threading.Event()
    supervisor = Supervisor(stop)
    child = supervisor.spawn(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env=dict(os.environ),
        log_path=tmp_path / "sleeper.log",
    )
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(StopRequested):
        supervisor.wait(child)
    assert time.monotonic() - started < 5
    supervisor.stop()


def test_children_run_in_their_own_process_groups(tmp_path: Path) -> None:
    """Each supervised process leads its own process group, apart from the supervisor's."""
    supervisor = Supervisor()
    child = supervisor.spawn(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env=dict(os.environ),
        log_path=tmp_path / "sleeper.log",
    )
    try:
        assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
    finally:
        supervisor.stop()
