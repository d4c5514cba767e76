"""Child processes: stop whole process trees, wait for a server to answer, quote a log's tail.

The one implementation every mlwf package, the test support and the benchmarks use to stop what
they started (``mlwf_instance.terminate_trees`` is this module's :func:`terminate_trees`).

Stopping works on process trees *and* process groups collected with psutil before any signal is
sent: a grandchild whose parent exited (a double fork, a daemonizing helper) is reparented and can
no longer be found from its old parent, but it stays in the process group of the process that
was started with ``start_new_session=True``. Group members count only if they started after the
leader, and every signal goes through psutil, which checks a process's start time first, so a
reused pid is never signalled. Keep a leader's :class:`psutil.Process` from when it was started:
it remembers the leader's start time, so its group is still found after the leader has exited
and been reaped (a bare pid of a reaped process finds nothing).

Importing this module imports psutil only (no Airflow): the trainer and service child processes
and the instance's watchdog use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import psutil

from mlwf_operators._errors import HealthCheckError, ServerExitedError, ServerNotHealthyError

__all__ = [
    "HealthCheckError",
    "ServerExitedError",
    "ServerNotHealthyError",
    "collect_group",
    "is_alive",
    "kill_tree",
    "kill_trees",
    "process_tree",
    "quote_log",
    "tail_file",
    "terminate_trees",
    "wait_until_healthy",
]

#: Seconds :func:`terminate_trees` and :func:`kill_trees` wait for SIGKILLed processes to go.
KILL_WAIT = 5.0


def is_alive(proc: psutil.Process) -> bool:
    """Return whether ``proc`` (same pid *and* start time) runs and is not a zombie."""
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def process_tree(pid: int) -> list[psutil.Process]:
    """Return the process ``pid`` and all its descendants alive now (empty if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _is_zombie(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def collect_group(leader: psutil.Process) -> list[psutil.Process]:
    """Return ``leader``, its descendants and every process still in its process group.

    Group members are found even when the leader has exited and they were reparented; only
    processes started after the leader count, so a reused pid is never mistaken for a member.
    """
    found: dict[int, psutil.Process] = {}
    if is_alive(leader):
        found[leader.pid] = leader
        for proc in _descendants(leader):
            found.setdefault(proc.pid, proc)
    try:
        since = leader.create_time()  # remembered by the object: works for a reaped leader
    except psutil.Error:
        return list(found.values())
    if not found and _pid_reused(leader):
        # The kernel keeps a pid unused while it names a live process group, so a new process
        # holding the leader's pid means the old group has no member left: the group that
        # now has this id is the newcomer's, not ours.
        return []
    for proc in psutil.process_iter():
        if proc.pid in found or _pgid(proc) != leader.pid:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.create_time() >= since:
                found[proc.pid] = proc
                for descendant in _descendants(proc):
                    found.setdefault(descendant.pid, descendant)
    return list(found.values())


def terminate_trees(
    leaders: Iterable[psutil.Process],
    grace: float = 10.0,
    extra: Iterable[psutil.Process] = (),
) -> list[psutil.Process]:
    """Stop process groups and every descendant; return the processes that needed SIGKILL.

    Collects each group leader's tree and group (see :func:`collect_group`) before any signal,
    sends SIGTERM to each live process group, waits up to ``grace`` seconds, then SIGKILLs every
    collected process still alive plus anything it forked meanwhile. ``extra`` adds processes
    known from elsewhere (e.g. recorded by a dead predecessor); they are signalled one by one.
    Processes that are already gone are fine: they are simply not found.
    """
    leaders = list(leaders)
    collected: dict[int, psutil.Process] = {p.pid: p for p in extra if is_alive(p)}
    for leader in leaders:
        for proc in collect_group(leader):
            collected.setdefault(proc.pid, proc)
    groups = {leader.pid for leader in leaders if is_alive(leader)}
    for group in groups:
        _killpg(group, signal.SIGTERM)
    for proc in collected.values():
        if _pgid(proc) not in groups:
            _signal(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(list(collected.values()), timeout=max(grace, 0.0))
    killed: dict[int, psutil.Process] = {}
    for proc in alive:
        for descendant in _descendants(proc):
            killed.setdefault(descendant.pid, descendant)
        killed.setdefault(proc.pid, proc)
    # A zombie has exited already (its parent has not reaped it yet): it is not one that
    # "needed SIGKILL", and its parent, if stuck, is in the list itself.
    killed = {pid: proc for pid, proc in killed.items() if not _is_zombie(proc)}
    for proc in killed.values():
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(list(killed.values()), timeout=KILL_WAIT)
    return list(killed.values())


def kill_trees(
    leaders: Iterable[psutil.Process], timeout: float = KILL_WAIT
) -> list[psutil.Process]:
    """SIGKILL process groups and every descendant at once, as a crash would; return the killed.

    No process gets a chance to clean up (no SIGTERM first). Each leader's tree and group are
    collected before any signal (see :func:`collect_group`); the groups are then signalled as a
    whole, which also catches a member forked meanwhile. Waits up to ``timeout`` s for them to go.
    """
    leaders = list(leaders)
    collected: dict[int, psutil.Process] = {}
    for leader in leaders:
        for proc in collect_group(leader):
            collected.setdefault(proc.pid, proc)
    for leader in leaders:
        if is_alive(leader):
            _killpg(leader.pid, signal.SIGKILL)
    for proc in collected.values():
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(list(collected.values()), timeout=timeout)
    return list(collected.values())


def kill_tree(process: int | psutil.Process, *, grace: float = 5.0) -> list[psutil.Process]:
    """Stop ``process``, its descendants and its process group; return what needed SIGKILL.

    SIGTERM first, then SIGKILL after ``grace`` s (see :func:`terminate_trees`); a ``grace`` of 0
    or less kills at once (see :func:`kill_trees`). ``process`` is a pid or, better, the
    :class:`psutil.Process` taken when it was started: only that finds the group of a leader that
    has already exited and been reaped. A pid that names no process is fine (nothing to stop).
    """
    if isinstance(process, int):
        try:
            process = psutil.Process(process)
        except psutil.NoSuchProcess:
            return []
    if grace <= 0:
        return kill_trees([process])
    return terminate_trees([process], grace=grace)


def wait_until_healthy(
    url: str,
    *,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | psutil.Process | None = None,
    timeout: float = 60.0,
    interval: float = 0.1,
    request_timeout: float = 2.0,
) -> None:
    """Return as soon as a GET of ``url`` answers a 2xx status.

    Raises :class:`ServerExitedError` as soon as ``process`` (the server, when we started it)
    has exited, and :class:`ServerNotHealthyError` after ``timeout`` s. A refused connection, a
    non-2xx answer or a request timeout counts as "not yet".
    """
    if timeout < 0 or interval <= 0:
        raise ValueError(f"timeout must be >= 0 and interval > 0, got {timeout} and {interval}")
    import httpx  # on first use: DAG files importing the operators skip it

    deadline = time.monotonic() + timeout
    while True:
        _check_running(url, process)
        try:
            if httpx.get(url, timeout=request_timeout).is_success:
                return
        except (httpx.HTTPError, OSError):
            pass  # not listening yet
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _check_running(url, process)  # an exit explains a timeout better
            raise ServerNotHealthyError(url, timeout)
        time.sleep(min(interval, remaining))


def _check_running(
    url: str, process: subprocess.Popen[bytes] | subprocess.Popen[str] | psutil.Process | None
) -> None:
    if process is None:
        return
    if isinstance(process, psutil.Process):
        if not is_alive(process):
            raise ServerExitedError(url, None)
    elif (code := process.poll()) is not None:
        raise ServerExitedError(url, code)


def tail_file(path: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of a text file ("" if it does not exist).

    Reads the file once, keeping only ``lines`` lines in memory (logs can be large).
    """
    try:
        with open(path, errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip("\n")
    except OSError:  # gone, unreadable or a directory: there is no tail to quote
        return ""


def quote_log(lines: Iterable[str], *, empty: str = "(no output)") -> str:
    """Return ``lines`` each indented as ``  | line`` for an error message (``empty`` if none)."""
    return "\n".join(f"  | {line}" for line in lines) or f"  | {empty}"


def _pid_reused(leader: psutil.Process) -> bool:
    try:
        return psutil.Process(leader.pid).create_time() != leader.create_time()
    except psutil.Error:
        return False


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except ProcessLookupError:
        return None


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return list(proc.children(recursive=True))
    except psutil.Error:
        return []


def _killpg(group: int, sig: signal.Signals) -> None:
    # Only called for groups whose leader (started by the caller) is alive, so the group is ours.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def _signal(proc: psutil.Process, sig: signal.Signals) -> None:
    # psutil checks the process's start time first, so a reused pid is never signalled.
    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)
