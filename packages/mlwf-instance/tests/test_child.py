"""Nothing a supervisor starts outlives it: the launcher's parent-death signal and the watchdog."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only"
)

# A component stand-in: records its pid, forks a child from its main thread (as LocalExecutor
# and Airflow's task supervisor do), and that child forks a grandchild; all of them sleep.
FORKING = r"""
import os, sys, time
markers = sys.argv[1]
def mark():
    open(os.path.join(markers, str(os.getpid())), "w").close()
mark()
for _ in range(2):
    if os.fork() != 0:
        break
    mark()
while True:
    time.sleep(0.1)
"""

# A supervisor stand-in: a Supervisor spawns the script given, prints its pid, and waits.
SUPERVISING = r"""
import os, sys, time
from pathlib import Path
from mlwf_instance import Supervisor
supervisor = Supervisor(watchdog_log=Path(sys.argv[3]))
supervisor.spawn("component", [sys.executable, sys.argv[1], sys.argv[2]], env=dict(os.environ),
                 log_path=Path(sys.argv[2]).parent / "component.log")
print("spawned", flush=True)
while True:
    time.sleep(0.1)
"""

# The same, with the watchdog already running when the component starts, so that a young child
# of the component is not older than the watchdog's last look at the tree.
SUPERVISING_LATE = SUPERVISING.replace(
    'supervisor.spawn("component"',
    'supervisor.spawn("idle", [sys.executable, "-c", "import time; time.sleep(600)"],'
    ' env=dict(os.environ), log_path=Path(sys.argv[2]).parent / "idle.log")\n'
    "time.sleep(2)\n"
    'supervisor.spawn("component"',
)

# A component whose child is exec-ed without a Python fork hook (subprocess without preexec_fn,
# as multiprocessing's spawn does): not armed against its parent, only the watchdog reaches it.
EXEC_CHILD = r"""
import os, subprocess, sys, time
markers = sys.argv[1]
open(os.path.join(markers, str(os.getpid())), "w").close()
child = subprocess.Popen([sys.executable, "-c",
    "import os, sys, time; open(os.path.join(sys.argv[1], str(os.getpid())), 'w').close(); "
    "time.sleep(600)", markers], start_new_session=os.environ.get("NEW_SESSION") == "1")
while True:
    time.sleep(0.1)
"""


def _wait_markers(markers: Path, count: int) -> set[int]:
    deadline = time.monotonic() + 30
    while len(pids := {int(p.name) for p in markers.iterdir()}) < count:
        assert time.monotonic() < deadline, f"only {pids} started"
        time.sleep(0.1)
    return pids


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def _gone_within(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while (left := _alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _kill(pids: set[int]) -> None:
    for pid in _alive(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def test_launched_tree_dies_with_its_parent_without_a_watchdog(tmp_path: Path) -> None:
    """Issue 10 item 15: a process run through the launcher, and what it forks, die within seconds of a SIGKILL of its parent."""
    script = tmp_path / "forking.py"
    script.write_text(FORKING)
    markers = tmp_path / "markers"
    markers.mkdir()
    # An intermediate parent that launches the tree and is then SIGKILLed: no watchdog here.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time;"
            "subprocess.Popen([sys.executable, '-m', 'mlwf_instance._child', str(os.getpid()),"
            " sys.executable, sys.argv[1], sys.argv[2]], start_new_session=True);"
            "time.sleep(600)",
            str(script),
            str(markers),
        ]
    )
    pids: set[int] = set()
    try:
        pids = _wait_markers(markers, 3)
        parent.kill()
        parent.wait(timeout=10)
        assert _gone_within(pids, 5) == set()
    finally:
        parent.kill()
        _kill(pids)


def _start_supervising(
    tmp_path: Path, script_text: str, supervising_text: str, script_name: str
) -> tuple[subprocess.Popen[str], Path]:
    """Start a process whose Supervisor runs ``script_text``; return it and the markers folder its processes write their pids to (watchdog log: ``tmp_path/wd.log``)."""
    script = tmp_path / script_name
    script.write_text(script_text)
    supervising = tmp_path / "supervising.py"
    supervising.write_text(supervising_text)
    markers = tmp_path / "markers"
    markers.mkdir()
    parent = subprocess.Popen(
        [sys.executable, str(supervising), str(script), str(markers), str(tmp_path / "wd.log")],
        stdout=subprocess.PIPE,
        text=True,
    )
    return parent, markers


def test_supervisor_killed_leaves_no_process(tmp_path: Path) -> None:
    """Issue 10 item 15: SIGKILL of a process running a Supervisor takes down every spawned process and its forks within seconds."""
    parent, markers = _start_supervising(tmp_path, FORKING, SUPERVISING, "forking.py")
    pids: set[int] = set()
    try:
        pids = _wait_markers(markers, 3)
        parent.kill()
        parent.wait(timeout=10)
        assert _gone_within(pids, 5) == set()
    finally:
        parent.kill()
        _kill(pids)


@pytest.mark.parametrize("new_session", [False, True], ids=["same-session", "new-session"])
def test_watchdog_kills_unarmed_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_session: bool
) -> None:
    """Issue 10 item 15: a child exec-ed without a fork hook, in its component's session or a new one (as BashOperator's shell), is killed by the watchdog once the supervisor dies."""
    monkeypatch.setenv("NEW_SESSION", "1" if new_session else "0")
    log = tmp_path / "wd.log"
    parent, markers = _start_supervising(tmp_path, EXEC_CHILD, SUPERVISING, "exec_child.py")
    pids: set[int] = set()
    try:
        pids = _wait_markers(markers, 2)
        time.sleep(2.5)  # the watchdog looks at the trees every second
        parent.kill()
        parent.wait(timeout=10)
        assert _gone_within(pids, 10) == set()
        # The component died by its parent-death signal; its exec-ed child only by the watchdog.
        deadline = time.monotonic() + 10
        while "killed 1 leftover" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "killed 1 leftover process(es)" in log.read_text()
    finally:
        parent.kill()
        _kill(pids)


def test_watchdog_kills_a_young_child_of_a_new_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 15: a child in a session of its own, too young for the watchdog to have seen it, is still killed through the supervisor's marker in its environment."""
    monkeypatch.setenv("NEW_SESSION", "1")
    parent, markers = _start_supervising(tmp_path, EXEC_CHILD, SUPERVISING_LATE, "exec_child.py")
    pids: set[int] = set()
    try:
        pids = _wait_markers(markers, 2)
        parent.kill()  # at once: the watchdog has had no time to look at the tree
        parent.wait(timeout=10)
        assert _gone_within(pids, 10) == set()
    finally:
        parent.kill()
        _kill(pids)


def test_launcher_refuses_a_parent_that_is_already_gone(tmp_path: Path) -> None:
    """Issue 10 item 15: a launcher whose parent died before it could arm itself exits at once instead of running unguarded."""
    marker = tmp_path / "ran"
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlwf_instance._child",
            "1",  # not our parent
            sys.executable,
            "-c",
            f"open({str(marker)!r}, 'w').close()",
        ],
        timeout=60,
    )
    assert result.returncode == -signal.SIGKILL
    assert not marker.exists()
    assert time.monotonic() - started < 30


def test_launcher_runs_python_in_process_with_arguments(tmp_path: Path) -> None:
    """The launcher runs ``python -m``, ``-c`` and script commands with their arguments and exit codes."""
    script = tmp_path / "script.py"
    script.write_text("import sys; print('script', sys.argv[1:]); sys.exit(3)")
    base = [sys.executable, "-m", "mlwf_instance._child", str(os.getpid())]
    as_script = subprocess.run(
        [*base, sys.executable, str(script), "a"], capture_output=True, text=True, timeout=60
    )
    assert (as_script.returncode, as_script.stdout) == (3, "script ['a']\n")
    as_code = subprocess.run(
        [*base, sys.executable, "-c", "import sys; print(sys.argv[1:])", "b"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert as_code.stdout == "['b']\n"
    as_module = subprocess.run(
        [*base, sys.executable, "-m", "json.tool", "--compact"],
        input='{"x": 1}',
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert as_module.stdout == '{"x":1}\n'
    other = subprocess.run([*base, "echo", "exec"], capture_output=True, text=True, timeout=60)
    assert other.stdout == "exec\n"


def test_watchdog_forgets_a_dead_session_only_once_it_is_empty() -> None:
    """A dead component's session stays watched while a member lives, and is forgotten once empty, so a later session reusing its pid is never swept."""
    from mlwf_instance._watchdog import look

    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; subprocess.Popen(['sleep', '30']); sys.exit(0)",
        ],
        start_new_session=True,
    )
    started = psutil.Process(leader.pid).create_time()
    leader.wait(timeout=30)
    member = next((p for p in psutil.process_iter(["name"]) if _sid(p.pid) == leader.pid), None)
    assert member is not None, "the leader's child should outlive it in its session"
    leaders = {leader.pid: started}
    try:
        look(leaders, {})
        assert leader.pid in leaders  # its session still has a member: keep watching it
    finally:
        member.kill()
        member.wait(timeout=10)
    look(leaders, {})
    assert leaders == {}


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None
