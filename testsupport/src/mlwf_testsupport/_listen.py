"""Start a server on a free port and make sure the server that answers there is ours.

:func:`free_port` only says that a port was free when it looked. Tests run under pytest-xdist,
so another worker's server can bind that port before ours does; ours then exits on the bind
failure while a readiness GET succeeds against the other server (an Airflow api-server answers
200 on every path outside ``/api/``). So readiness here means: *our* process, or one of its
descendants (uvicorn and gunicorn workers), holds a listening socket on the port. A server
that exits while another process holds its port was beaten to the port, and
:func:`start_on_free_port` tries again on a new one.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from mlwf_testsupport._ports import free_port

#: Servers started with a port of their own choosing try this many ports before giving up.
PORT_ATTEMPTS = 3

#: How much of a server's log an error message quotes.
_LOG_TAIL = 3000


class ServerStartError(RuntimeError):
    """A server started by a test fixture exited or did not become ready in time."""


class PortTakenError(ServerStartError):
    """A server exited because another process bound its port first."""

    def __init__(self, what: str, port: int, log_tail: str = "") -> None:
        super().__init__(f"{what} exited and another process listens on its port {port}{log_tail}")
        self.port = port


def listening_ports(process: subprocess.Popen[Any] | psutil.Process | int) -> set[int]:
    """Return the TCP ports ``process`` or any of its descendants listens on (empty once gone)."""
    pid = process if isinstance(process, int) else process.pid
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return set()
    ports: set[int] = set()
    for proc in tree:
        try:
            connections = proc.net_connections(kind="tcp")
        except psutil.Error:  # exited meanwhile
            continue
        ports.update(c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN)
    return ports


def listens(process: subprocess.Popen[Any] | psutil.Process | int, port: int) -> bool:
    """Return whether ``process`` or one of its descendants holds a listening TCP socket on ``port``."""
    return port in listening_ports(process)


def port_bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Return whether a server could bind ``port`` on ``host`` now (no other process listens on it).

    With SO_REUSEADDR, as servers bind: connections left in TIME_WAIT do not make a port taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_listening(
    process: subprocess.Popen[Any],
    port: int,
    *,
    what: str,
    timeout: float,
    ready: Callable[[], bool] | None = None,
    log: Path | None = None,
    interval: float = 0.2,
) -> None:
    """Return once ``process`` (or a descendant) listens on ``port`` and ``ready()`` holds.

    ``ready`` (e.g. "the health endpoint answers 200") is asked only while our process listens,
    so it cannot be answered by another process's server. Raises :class:`PortTakenError` when
    ``process`` exits while the port is not bindable, :class:`ServerStartError` when it exits
    otherwise or after ``timeout`` s; both quote the end of ``log``.
    """
    deadline = time.monotonic() + timeout
    while True:
        if (code := process.poll()) is not None:
            if not port_bindable(port):
                raise PortTakenError(what, port, _tail(log))
            raise ServerStartError(f"{what} exited with code {code}{_tail(log)}")
        if listens(process, port) and (ready is None or ready()):
            return
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{what} did not {'get ready' if ready else 'listen'} on port {port} "
                f"within {timeout:g} s{_tail(log)}"
            )
        time.sleep(interval)


def start_on_free_port(
    start: Callable[[int], subprocess.Popen[Any]],
    stop: Callable[[subprocess.Popen[Any]], None],
    *,
    what: str,
    timeout: float,
    port: int | None = None,
    ready: Callable[[int], bool] | None = None,
    log: Path | None = None,
    attempts: int = PORT_ATTEMPTS,
) -> tuple[subprocess.Popen[Any], int]:
    """Start a server with ``start(port)`` and wait until it is ready (see :func:`wait_listening`).

    Without ``port``, each attempt takes a :func:`free_port`, and a port another process took
    first is retried on a new one, up to ``attempts`` times; a ``port`` the caller chose is
    tried once. ``stop(process)`` ends every process that is not returned (it may have exited
    already). Return the running process and its port.
    """
    tries = 1 if port is not None else attempts
    for attempt in range(1, tries + 1):
        chosen = port if port is not None else free_port()
        process = start(chosen)
        try:
            wait_listening(
                process,
                chosen,
                what=what,
                timeout=timeout,
                ready=partial(ready, chosen) if ready is not None else None,
                log=log,
            )
        except PortTakenError:
            stop(process)
            if attempt == tries:
                raise
            continue
        except BaseException:
            stop(process)
            raise
        return process, chosen
    raise AssertionError("unreachable: the last attempt returns or raises")


def _tail(log: Path | None) -> str:
    if log is None:
        return ""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return f"; the end of {log}:\n{text[-_LOG_TAIL:]}"
