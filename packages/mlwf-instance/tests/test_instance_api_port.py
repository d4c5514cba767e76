"""wait_healthy trusts the health document only from the instance's own api-server (fake components, real processes)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mlwf_instance import (
    ComponentDiedError,
    EmbeddedInstance,
    HealthTimeoutError,
    PortTakenError,
)
from mlwf_testsupport import free_port


def _healthy_document() -> bytes:
    """Return a health document as Airflow's, every component healthy with a heartbeat of now."""
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "metadatabase": {"status": "healthy"},
            **{
                name: {"status": "healthy", f"latest_{name}_heartbeat": now}
                for name in ("scheduler", "triggerer", "dag_processor")
            },
        }
    ).encode()


# A stand-in for the `airflow` CLI: `db migrate` succeeds at once, every component sleeps.
FAKE_AIRFLOW = textwrap.dedent(
    """
    import sys, time
    if sys.argv[1:] == ["db", "migrate"]:
        sys.exit(0)
    while True:
        time.sleep(0.1)
    """
)

# A stand-in for the api-server, `MODE PORT`: "serve" binds 127.0.0.1:PORT and answers every GET
# with a healthy document (exiting with 1 when the port is taken, as uvicorn does); "child"
# leaves that to a child process, as uvicorn's supervisor leaves it to its workers; "idle" never
# binds (an api-server still loading Airflow).
FAKE_API_SERVER = textwrap.dedent(
    """
    import json, subprocess, sys, time
    from datetime import UTC, datetime
    from http.server import BaseHTTPRequestHandler, HTTPServer

    mode, port = sys.argv[1], int(sys.argv[2])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            now = datetime.now(UTC).isoformat()
            body = {"metadatabase": {"status": "healthy"}}
            for name in ("scheduler", "triggerer", "dag_processor"):
                body[name] = {"status": "healthy", f"latest_{name}_heartbeat": now}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    if mode == "serve":
        try:
            server = HTTPServer(("127.0.0.1", port), Handler)
        except OSError as err:
            sys.exit(f"ERROR: [Errno {err.errno}] {err.strerror}")
        server.serve_forever()
    elif mode == "child":
        sys.exit(subprocess.call([sys.executable, sys.argv[0], "serve", str(port)]))
    while True:
        time.sleep(0.1)
    """
)


class _AnswersHealthy(BaseHTTPRequestHandler):
    """Another instance's api-server: a healthy health document on every path."""

    def do_GET(self) -> None:
        data = _healthy_document()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def start_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, bool], EmbeddedInstance]]:
    """Start an instance of fake components whose api-server runs in the given mode.

    With ``take_port``, another HTTP server in this test process binds the API port once the
    start checked it free and before the api-server starts (at "migrating the metadata database").
    """
    airflow = tmp_path / "fake_airflow.py"
    airflow.write_text(FAKE_AIRFLOW)
    api_server = tmp_path / "fake_api_server.py"
    api_server.write_text(FAKE_API_SERVER)
    monkeypatch.setattr(
        "mlwf_instance._instance.airflow_command",
        lambda *args: [sys.executable, str(airflow), *args],
    )
    port = free_port()
    foreign: list[ThreadingHTTPServer] = []
    instances: list[EmbeddedInstance] = []

    def take(message: str) -> None:
        if message.startswith("migrating"):
            server = ThreadingHTTPServer(("127.0.0.1", port), _AnswersHealthy)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            foreign.append(server)

    def start(mode: str, take_port: bool) -> EmbeddedInstance:
        monkeypatch.setattr(
            "mlwf_instance._instance.api_server_command",
            lambda _log_port: [sys.executable, str(api_server), mode, str(port)],
        )
        instance = EmbeddedInstance(
            tmp_path / "home", port=port, output=take if take_port else None
        )
        instances.append(instance)
        instance.start()
        assert bool(foreign) == take_port
        return instance

    try:
        yield start
    finally:
        for instance in instances:
            instance.stop(grace=2.0)
        for server in foreign:
            server.shutdown()
            server.server_close()


def test_an_api_server_whose_port_was_taken_meanwhile_is_port_taken_error(
    start_instance: Callable[[str, bool], EmbeddedInstance],
) -> None:
    """The api-server exits on a port another server took after start's check: PortTakenError names port and pid, not healthy."""
    instance = start_instance("serve", True)
    port = instance.config.port
    with pytest.raises(
        PortTakenError,
        match=rf"component 'api-server' exited with code 1: port {port} on 127.0.0.1 was taken "
        rf"by another process \(pid {os.getpid()}\).*choose another port",
    ) as info:
        instance.wait_healthy(timeout=60)
    assert isinstance(info.value, ComponentDiedError)
    assert (info.value.port, info.value.pid) == (port, os.getpid())
    assert "Address already in use" in info.value.log_tail


def test_another_servers_health_does_not_count_before_the_api_server_listens(
    start_instance: Callable[[str, bool], EmbeddedInstance],
) -> None:
    """While the api-server has not bound the port, a healthy answer from another server there is ignored; the timeout says who holds the port."""
    instance = start_instance("idle", True)
    with pytest.raises(
        HealthTimeoutError,
        match=rf"unhealthy: api-server.*port {instance.config.port} is held by another process "
        rf"\(pid {os.getpid()}\), not by the api-server",
    ):
        instance.wait_healthy(timeout=3)


def test_an_api_server_whose_child_listens_is_healthy(
    start_instance: Callable[[str, bool], EmbeddedInstance],
) -> None:
    """The api-server's whole process tree counts: a listening child process makes it healthy."""
    instance = start_instance("child", False)
    instance.wait_healthy(timeout=60)
