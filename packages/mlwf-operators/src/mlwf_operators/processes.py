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

from mlwf_operators._errors import (
    HealthCheckError,
    PortTakenError,
    ServerExitedError,
    ServerNotHealthyError,
)

__all__ = [
    "HealthCheckError",
    "PortTakenError",
    "ServerExitedError",
    "ServerNotHealthyError",
    "collect_group",
    "is_alive",
    "kill_tree",
    "kill_trees",
    "listens_on",
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
    """Return as soon as a GET of ``url`` answers a 2xx status (from ``process``, if given).

    With ``process`` (the server, when we started it), an answer counts only once the process or
    one of its descendants listens on the port of ``url`` (see :func:`listens_on`): a port
    chosen in advance may be taken by another program before the server binds it, and the server
    then exits while ``url`` reaches the other program. Raises :class:`PortTakenError` when the
    server has exited and another process listens on the port, :class:`ServerExitedError` as
    soon as it has exited otherwise, and :class:`ServerNotHealthyError` after ``timeout`` s. A
    refused connection, a non-2xx answer or a request timeout counts as "not yet".
    """
    if timeout < 0 or interval <= 0:
        raise ValueError(f"timeout must be >= 0 and interval > 0, got {timeout} and {interval}")
    import httpx  # on first use: DAG files importing the operators skip it

    port = _url_port(url) if process is not None else 0
    server = _as_psutil(process)
    deadline = time.monotonic() + timeout
    while True:
        _check_running(url, process, server, port)
        if server is None or listens_on(server, port):
            try:
                if httpx.get(url, timeout=request_timeout).is_success:
                    return
            except (httpx.HTTPError, OSError):
                pass  # not serving yet
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _check_running(url, process, server, port)  # an exit explains a timeout better
            raise ServerNotHealthyError(url, timeout, _foreign_listener(server, port))
        time.sleep(min(interval, remaining))


def listens_on(process: psutil.Process, port: int) -> bool:
    """Return whether ``process`` or one of its descendants holds a listening TCP socket on ``port``.

    A server started with a port chosen in advance may find it taken when it binds; this tells
    its own listening socket from another program's (a request to the port cannot).
    """
    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.Error:
        return False
    for proc in tree:
        try:
            # psutil 6 renamed Process.connections to net_connections; we accept psutil 5.9
            connections = (
                proc.net_connections if hasattr(proc, "net_connections") else proc.connections
            )
            if any(
                c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                for c in connections(kind="tcp")
            ):
                return True
        except psutil.Error:
            continue  # gone meanwhile, or a zombie
    return False


def _port_holders(port: int, exclude: Iterable[int] = ()) -> list[int | None]:
    """Return the pids listening on TCP ``port``, not in ``exclude``, the named ones last.

    None stands for a process psutil cannot name (another user's, without root).
    """
    skip = set(exclude)
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:  # AccessDenied off Linux without root: nobody to name
        return []
    return sorted(
        {
            c.pid
            for c in connections
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
            if c.pid not in skip
        },
        key=lambda pid: -1 if pid is None else pid,
    )


def _foreign_listener(server: psutil.Process | None, port: int) -> str:
    """Return why ``server`` cannot answer on ``port`` when another process listens there, else ""."""
    if server is None or listens_on(server, port):
        return ""
    holders = _port_holders(port, exclude={p.pid for p in collect_group(server)})
    if not holders:
        return ""
    pid = holders[-1]
    holder = "another process" if pid is None else f"another process (pid {pid})"
    return f"port {port} is held by {holder}, not by the server, whose answers alone count"


def _url_port(url: str) -> int:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port is None:
        raise ValueError(f"no port in {url!r}: cannot tell whether the server listens there")
    return port


def _as_psutil(
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | psutil.Process | None,
) -> psutil.Process | None:
    if process is None or isinstance(process, psutil.Process):
        return process
    try:
        return psutil.Process(process.pid)
    except psutil.NoSuchProcess:
        return None  # reaped already: _check_running reports the exit


def _check_running(
    url: str,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | psutil.Process | None,
    server: psutil.Process | None,
    port: int,
) -> None:
    if process is None:
        return
    if isinstance(process, psutil.Process):
        if is_alive(process):
            return
        code = None
    elif (code := process.poll()) is None:
        return
    # The server is gone: whoever listens on its port now, outside its process group, is another
    # process, one that took the port first (the server's bind failed) or since.
    ours = {p.pid for p in collect_group(server)} if server is not None else set()
    holders = _port_holders(port, exclude=ours)
    if holders:
        raise PortTakenError(url, code, port, holders[-1])
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
