"""Free TCP ports for servers started by tests."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that is free right now (the OS picks it).

    Another process may take it before the caller binds it: under pytest-xdist another worker's
    server sometimes does. A server of a test should start with
    :func:`~mlwf_testsupport.start_on_free_port`, which tells its own server from that one.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
