"""The api-server launcher: the log server starts first, in a thread, or the launcher exits with why."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from mlwf_instance._log_server import start


def _launch(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AIRFLOW_HOME=str(home))
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return subprocess.run(
        [sys.executable, "-m", "mlwf_instance._api_server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_port_it_prints_usage(tmp_path: Path) -> None:
    """A missing or invalid log port is a usage error (exit 1), not a traceback."""
    for args in ([], ["http"], ["70000"]):
        done = _launch(args, tmp_path)
        assert done.returncode == 1, (args, done.stderr)
        assert "usage: python -m mlwf_instance._api_server LOG_PORT" in done.stderr
        assert "Traceback" not in done.stderr


def test_a_taken_log_port_stops_it_before_the_api_server(tmp_path: Path) -> None:
    """If the log server cannot listen, the launcher exits 1 naming the address; no api-server starts."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _launch([str(port)], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"mlwf: the instance's log server could not listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Running the API server" not in done.stdout + done.stderr


def test_the_log_server_thread_answers_unsigned_requests_with_403(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a thread, Airflow's log-server app serves on loopback and refuses a request without a JWT."""
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    (tmp_path / "task.log").write_text("secret log line\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start(port, timeout=60)
    try:
        (thread,) = [t for t in threading.enumerate() if t.name == "mlwf-log-server"]
        assert thread.daemon
        answer = httpx.get(f"http://127.0.0.1:{port}/log/task.log", timeout=10)
        assert answer.status_code == 403
        assert "secret log line" not in answer.text
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()
