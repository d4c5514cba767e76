"""Networking of an instance: loopback addresses of its internal servers, and who listens on a port."""

from __future__ import annotations

import socket
from collections.abc import Set

import psutil

#: The address every internal server of an embedded instance binds (API server, log server).
LOOPBACK = "127.0.0.1"


def http_url(host: str, port: int) -> str:
    """Return ``http://host:port``, an IPv6 address in brackets (``http://[::1]:8080``)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def loopback_hostname() -> str:
    """Return the loopback address: ``[core] hostname_callable`` of an embedded instance.

    Airflow fetches a running task's log from ``http://<task hostname>:<log server port>``; the
    log server listens on loopback only, so the recorded hostname must be the loopback address
    (the machine's name may resolve to another interface, or to 127.0.1.1).
    """
    return LOOPBACK


def free_loopback_port() -> int:
    """Return a TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def tree_listens(root: psutil.Process, port: int) -> bool:
    """Return whether ``root`` or one of its descendants holds a listening TCP socket on ``port``.

    A request to the port cannot tell: another program may have bound it first (the api-server
    then exits), and Airflow's api-server answers 200 on every path but ``/api/``. Cheap enough
    for a wait loop: it reads the sockets of the few processes of one tree.
    """
    try:
        tree = [root, *root.children(recursive=True)]
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


def port_holders(port: int, exclude: Set[int] = frozenset()) -> list[int | None]:
    """Return who listens on TCP ``port``, besides the pids in ``exclude``: named pids last.

    None stands for a process psutil cannot name (another user's, when we are not root).
    """
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:  # AccessDenied where the system table needs root (not on Linux)
        return []
    holders = {
        c.pid
        for c in connections
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
        if c.pid not in exclude
    }
    return sorted(holders, key=lambda pid: -1 if pid is None else pid)
