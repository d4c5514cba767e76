"""Servers on free ports: a server that answers on our port is ours only if our process tree listens there."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from mlwf_testsupport import _listen
from mlwf_testsupport._listen import (
    PortTakenError,
    ServerStartError,
    listens,
    port_bindable,
    start_on_free_port,
    wait_listening,
)
from mlwf_testsupport._ports import free_port

#: A child that starts ``python -m http.server`` on port argv[1] as its own child, then waits.
GRANDPARENT = (
    "import subprocess, sys\n"
    "subprocess.run([sys.executable, '-m', 'http.server', sys.argv[1], '--bind', '127.0.0.1'])\n"
)


class _AnswersEverything(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[int]:
    """The port of a server in this process answering 200 everywhere, as another xdist worker's
    Airflow api-server does (every path outside /api/, and the health check without a login)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AnswersEverything)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def http_server(port: int) -> subprocess.Popen[bytes]:
    """Start ``python -m http.server`` on ``port`` in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[Any]) -> None:
    """Stop ``process`` and its process group (children included)."""
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def answers(port: int) -> bool:
    """Return whether GET / on ``port`` answers 200."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_port_this_process_listens_on_is_not_a_child_s(other_server: int) -> None:
    """A port held by another process (here the test process) is not the child's, though it answers."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert answers(other_server)
        assert not listens(child, other_server)
        assert listens(os.getpid(), other_server)
        assert not port_bindable(other_server)
    finally:
        child.kill()
        child.wait()


def test_a_child_http_server_is_ours() -> None:
    """A child listening on the port is found, by Popen and by pid; the port is then not bindable."""
    port = free_port()
    process = http_server(port)
    try:
        wait_listening(process, port, what="http.server", timeout=30, ready=lambda: answers(port))
        assert listens(process, port) and listens(process.pid, port)
        assert not port_bindable(port)
    finally:
        stop(process)
    assert not listens(process, port) and port_bindable(port)


def test_a_listener_started_by_a_child_counts() -> None:
    """A grandchild's listening socket counts (uvicorn and gunicorn workers are such children)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", GRANDPARENT, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_listening(process, port, what="a grandchild", timeout=30)
        own = {c.laddr.port for c in psutil.Process(process.pid).net_connections(kind="tcp")}
        assert port not in own  # the listener is the grandchild's alone
    finally:
        stop(process)


def test_a_taken_port_is_retried_on_a_new_one(
    other_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI flake: another worker's server took free_port's port first and answered our readiness
    check; now our server's exit on that port is seen and a new port is tried."""
    picks: list[int] = []

    def first_taken() -> int:
        picks.append(other_server if not picks else free_port())
        return picks[-1]

    monkeypatch.setattr(_listen, "free_port", first_taken)
    process, port = start_on_free_port(
        http_server, stop, what="http.server", timeout=30, ready=answers
    )
    try:
        assert picks == [other_server, port] and port != other_server
        assert listens(process, port)
    finally:
        stop(process)


def test_a_port_the_caller_chose_is_not_retried(other_server: int) -> None:
    """A taken port that the caller chose fails with PortTakenError, not an answer from another server."""
    started: list[subprocess.Popen[bytes]] = []

    def start(port: int) -> subprocess.Popen[bytes]:
        started.append(http_server(port))
        return started[-1]

    with pytest.raises(PortTakenError, match=f"port {other_server}"):
        start_on_free_port(
            start, stop, what="http.server", timeout=30, port=other_server, ready=answers
        )
    assert len(started) == 1 and started[0].returncode is not None


def test_a_server_that_exits_for_another_reason_is_not_retried() -> None:
    """An exit on a free port is an error of the server, reported with its log and not retried."""
    started: list[int] = []

    def start(port: int) -> subprocess.Popen[bytes]:
        started.append(port)
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])

    with pytest.raises(ServerStartError, match="exited with code 3") as raised:
        start_on_free_port(start, stop, what="a broken server", timeout=30)
    assert not isinstance(raised.value, PortTakenError) and len(started) == 1


def test_airflow_api_server_is_not_another_server_on_its_port(
    other_server: int, tmp_path: Path
) -> None:
    """The api-server fixture fails on a port another server answers on, instead of yielding it."""
    pytest.importorskip("airflow", reason="apache-airflow is not installed in this environment")
    from mlwf_testsupport import airflow_api_server

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        }
    )
    migrated = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert migrated.returncode == 0, migrated.stderr.decode()[-3000:]
    with (
        pytest.raises(PortTakenError, match=f"port {other_server}"),
        airflow_api_server(env, tmp_path / "server.log", port=other_server),
    ):
        pass
    assert "address already in use" in (tmp_path / "server.log").read_text().lower()
