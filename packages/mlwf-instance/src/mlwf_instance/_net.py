"""Loopback networking of an embedded instance: its internal servers are reachable from this host only."""

from __future__ import annotations

import socket

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
