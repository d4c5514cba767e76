"""The slapd fixture: it never hands out a server that is not its own, and ``paused`` really pauses."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from mlwf_testsupport import slapd as slapd_module
from mlwf_testsupport._ports import free_port
from mlwf_testsupport.slapd import LdapUser, directory_ldif, paused, slapd_server

SUFFIX = "dc=example,dc=test"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process (here: this one) listens on, as another xdist worker's server would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_taken_before_slapd_binds_it_is_not_mistaken_for_slapd(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI, 2026-12-06: free_port's port was bound by another worker's server before slapd's
    bind; slapd exited, the fixture saw the port answer and handed out the other server, and a
    "paused" slapd kept answering. Now the fixture waits for its own slapd to listen and picks
    new ports when the first is taken."""
    picks: list[int] = []

    def first_taken() -> int:
        picks.append(taken_port if not picks else free_port())
        return picks[-1]

    monkeypatch.setattr(slapd_module, "free_port", first_taken)
    ldif = directory_ldif(SUFFIX, [LdapUser("alice", "alice-pw", 1001)], {})
    with slapd_server(tmp_path, ldif, suffix=SUFFIX) as server:
        assert len(picks) == 2 and server.url == f"ldap://127.0.0.1:{picks[1]}"
        listening = {
            c.laddr.port
            for c in psutil.Process(server.pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }
        assert picks[1] in listening
        with paused(server):
            assert psutil.Process(server.pid).status() == psutil.STATUS_STOPPED
            with socket.create_connection(("127.0.0.1", picks[1]), timeout=2) as conn:
                conn.settimeout(0.5)
                conn.sendall(b"\x30\x0c\x02\x01\x01\x60\x07\x02\x01\x03\x04\x00\x80\x00")
                with pytest.raises(TimeoutError):  # an anonymous bind: no answer while paused
                    conn.recv(1)
        assert psutil.Process(server.pid).status() != psutil.STATUS_STOPPED
