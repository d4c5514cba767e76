"""mlwf_operators.processes on real process trees, real servers and real log files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from mlwf_operators.processes import (
    PortTakenError,
    ServerExitedError,
    ServerNotHealthyError,
    kill_tree,
    listens_on,
    process_tree,
    quote_log,
    tail_file,
    terminate_trees,
    wait_until_healthy,
)
from mlwf_testsupport import free_port

# A leader that double-forks: its child forks a grandchild and exits at once, so the grandchild
# is reparented (to init or a subreaper) and is no descendant of the leader any more; it stays
# in the leader's process group. Each process writes its pid to a file and sleeps.
DOUBLE_FORK = textwrap.dedent(
    """
    import os, sys, time
    out = sys.argv[1]
    if os.fork() == 0:
        if os.fork() == 0:
            open(out + ".grandchild.tmp", "w").write(str(os.getpid()))
            os.rename(out + ".grandchild.tmp", out + ".grandchild")
            time.sleep(120)
            os._exit(0)
        os._exit(0)
    os.wait()
    open(out + ".leader", "w").write(str(os.getpid()))
    time.sleep(120)
    """
)

# Ignores SIGTERM (writing down that it got one) so that only SIGKILL ends it.
STUBBORN = textwrap.dedent(
    """
    import signal, sys, time
    out = sys.argv[1]
    def note(signum, frame):
        open(out, "a").write("TERM\\n")
    signal.signal(signal.SIGTERM, note)
    open(out, "a").write("ready\\n")
    while True:
        time.sleep(0.1)
    """
)


def _wait_for(path: Path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.is_file() or not path.read_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not written within {timeout} s")
        time.sleep(0.05)
    return path.read_text()


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _start_double_fork(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    out = tmp_path / "pids"
    leader = subprocess.Popen([sys.executable, "-c", DOUBLE_FORK, str(out)], start_new_session=True)
    grandchild = int(_wait_for(Path(f"{out}.grandchild")))
    _wait_for(Path(f"{out}.leader"))
    return leader, grandchild


def test_kill_tree_kills_a_reparented_grandchild(tmp_path: Path) -> None:
    """A double-forked grandchild, no descendant of the leader any more, dies with the leader."""
    leader, grandchild = _start_double_fork(tmp_path)
    try:
        assert grandchild not in {p.pid for p in process_tree(leader.pid)}  # really reparented
        kill_tree(leader.pid, grace=5)
        leader.wait(timeout=10)
        assert not _running(grandchild)
    finally:
        leader.kill()
        leader.wait()
        if _running(grandchild):
            psutil.Process(grandchild).kill()


def test_kill_tree_finds_the_group_of_a_leader_already_reaped(tmp_path: Path) -> None:
    """With the Process taken at start, the group's survivors are killed after the leader was reaped."""
    leader, grandchild = _start_double_fork(tmp_path)
    handle = psutil.Process(leader.pid)
    try:
        leader.kill()
        leader.wait(timeout=10)  # reaped: its pid names no process now
        assert _running(grandchild)
        kill_tree(handle, grace=0)
        assert not _running(grandchild)
    finally:
        if _running(grandchild):
            psutil.Process(grandchild).kill()


def test_sigterm_first_then_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    """A process ignoring SIGTERM gets it first and is SIGKILLed once the grace period is over."""
    notes = tmp_path / "notes"
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN, str(notes)], start_new_session=True)
    try:
        _wait_for(notes)
        started = time.monotonic()
        killed = kill_tree(proc.pid, grace=1.0)
        assert time.monotonic() - started >= 1.0
        assert [p.pid for p in killed] == [proc.pid]
        assert not _running(proc.pid)  # SIGKILLed and reaped (by psutil: Popen sees no code)
        assert "TERM" in notes.read_text()
    finally:
        proc.kill()
        proc.wait()


UNREAPED_CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = os.fork()
    if child == 0:
        os._exit(0)  # exits at once; the parent never reaps it: a zombie until the parent goes
    open(sys.argv[1], "w").write(str(child))
    while True:
        time.sleep(0.1)
    """
)


def test_an_unreaped_child_is_not_counted_as_needing_sigkill(tmp_path: Path) -> None:
    """A zombie (exited, its parent stuck) is not reported as a process that needed SIGKILL:
    only its stuck parent is (``mlwf up`` said "2 process(es) needed SIGKILL" for one)."""
    out = tmp_path / "child"
    proc = subprocess.Popen(
        [sys.executable, "-c", UNREAPED_CHILD, str(out)], start_new_session=True
    )
    try:
        zombie = int(_wait_for(out))
        deadline = time.monotonic() + 10
        while psutil.Process(zombie).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.05)
        killed = kill_tree(proc.pid, grace=1.0)
        assert [p.pid for p in killed] == [proc.pid]
        assert not _running(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_honours_sigterm_is_not_killed(tmp_path: Path) -> None:
    """A process that exits on SIGTERM is not in the list of those that needed SIGKILL."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        started = time.monotonic()
        assert kill_tree(proc.pid, grace=10) == []
        assert not _running(proc.pid)
        assert time.monotonic() - started < 5  # gone on SIGTERM, no wait for the grace period
    finally:
        proc.kill()
        proc.wait()


def test_already_dead_processes_are_fine() -> None:
    """A pid that names no process, and a Process that has exited, are stopped without error."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    handle = psutil.Process(proc.pid)
    proc.wait()
    assert kill_tree(proc.pid) == []
    assert kill_tree(handle, grace=0) == []
    assert terminate_trees([handle], grace=1) == []


def test_wait_until_healthy_waits_through_error_statuses(
    health_server: tuple[str, list[int]],
) -> None:
    """503 answers count as "not yet"; the wait returns on the first 200."""
    url, statuses = health_server
    statuses.extend([503, 503])
    wait_until_healthy(url, timeout=10, interval=0.01)
    assert statuses == []


def test_wait_until_healthy_times_out_naming_the_url() -> None:
    """Nothing listening: ServerNotHealthyError after the timeout, naming the URL."""
    url = f"http://127.0.0.1:{free_port()}/health"
    with pytest.raises(ServerNotHealthyError, match=f"{url} did not answer .* within 0.3 s"):
        wait_until_healthy(url, timeout=0.3, interval=0.05)


def test_wait_until_healthy_stops_when_the_server_exits() -> None:
    """A server process that exits ends the wait at once with its exit code."""
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    url = f"http://127.0.0.1:{free_port()}/health"
    started = time.monotonic()
    with pytest.raises(ServerExitedError, match="exited with code 3") as info:
        wait_until_healthy(url, process=proc, timeout=60)
    assert info.value.returncode == 3
    assert time.monotonic() - started < 30


# Serves 200 on 127.0.0.1:PORT from a child process it forks (as uvicorn's supervisor leaves the
# listening to its workers), and waits for it.
LISTENING_CHILD = textwrap.dedent(
    """
    import subprocess, sys
    child = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", sys.argv[1]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    sys.exit(child.wait())
    """
)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def test_wait_until_healthy_names_the_port_another_server_took(
    health_server: tuple[str, list[int]],
) -> None:
    """A server that cannot bind a port another server answers on is PortTakenError naming port and pid, not healthy."""
    url, _ = health_server  # this test process listens there and answers 200 to everything
    port = _port(url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with pytest.raises(
            PortTakenError, match=f"port {port} was taken by another process"
        ) as info:
            wait_until_healthy(url, process=proc, timeout=60)
    finally:
        kill_tree(proc.pid, grace=0)
        proc.wait()
    assert info.value.port == port
    assert info.value.pid == os.getpid()
    assert info.value.returncode == 1


def test_wait_until_healthy_ignores_another_server_while_ours_does_not_listen(
    health_server: tuple[str, list[int]],
) -> None:
    """While the started server has not bound the port, another server's 200 does not count: the timeout says why."""
    url, _ = health_server
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(
            ServerNotHealthyError,
            match=rf"port {_port(url)} is held by another process \(pid {os.getpid()}\), not by the server",
        ):
            wait_until_healthy(url, process=proc, timeout=1, interval=0.05)
    finally:
        kill_tree(proc.pid, grace=0)
        proc.wait()


def test_wait_until_healthy_counts_a_descendant_listening(tmp_path: Path) -> None:
    """A server whose child process listens on the port is healthy (the whole tree counts)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", LISTENING_CHILD, str(port)], cwd=tmp_path, start_new_session=True
    )
    leader = psutil.Process(proc.pid)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/", process=proc, timeout=60)
        assert listens_on(leader, port)
        assert not any(
            c.status == psutil.CONN_LISTEN for c in leader.net_connections(kind="tcp")
        )  # the leader itself does not listen: its child does
    finally:
        kill_tree(leader, grace=0)
        proc.wait()


def test_wait_until_healthy_refuses_a_bad_interval() -> None:
    """A non-positive interval is refused with a clear error."""
    with pytest.raises(ValueError, match="interval > 0"):
        wait_until_healthy("http://127.0.0.1:1/", interval=0)


def test_tail_file_and_quote_log(tmp_path: Path) -> None:
    """tail_file keeps the last lines ("" for a missing file); quote_log indents or says empty."""
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail_file(log, 2) == "line 98\nline 99"
    assert tail_file(tmp_path / "missing.log") == ""
    assert tail_file(tmp_path) == ""  # a directory (or an unreadable file) has no tail either
    assert quote_log(["a", "b"]) == "  | a\n  | b"
    assert quote_log([], empty="(empty log)") == "  | (empty log)"
