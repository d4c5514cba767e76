"""The api-server launcher: the log server starts first, in a thread, or the launcher exits with why."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlwf_instance._log_server import start
from mlwf_testsupport import free_port


def _python(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` with ``home`` as AIRFLOW_HOME, outside Airflow's unit-test mode."""
    env = dict(os.environ, AIRFLOW_HOME=str(home))
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
    )


def _launch(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return _python(["-m", "mlwf_instance._api_server", *args], home)


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


@pytest.fixture(scope="module")
def log_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """The log server in a thread of this process, serving a temporary log folder: (port, folder).

    One per module: Airflow caches its log-server app, with the folder it read at creation.
    """
    folder = tmp_path_factory.mktemp("logs")
    (folder / "dag_id=d").mkdir()
    (folder / "dag_id=d" / "attempt=1.log").write_text("the task's log line\n")
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(folder))
        server = start(port, timeout=60)
        (thread,) = [t for t in threading.enumerate() if t.name == "mlwf-log-server"]
        assert thread.daemon
        yield port, folder
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_log_server_thread_answers_unsigned_requests_with_403(
    log_server: tuple[int, Path],
) -> None:
    """In a thread, Airflow's log-server app serves on loopback and refuses a request without a JWT."""
    port, _ = log_server
    answer = httpx.get(f"http://127.0.0.1:{port}/log/dag_id=d/attempt=1.log", timeout=10)
    assert answer.status_code == 403
    assert "the task's log line" not in answer.text


def test_the_log_server_thread_serves_a_request_signed_as_the_api_server_signs_it(
    log_server: tuple[int, Path],
) -> None:
    """Airflow's own log client (a JWT signed with ``[api] secret_key``, as the api-server signs) gets the file: 200."""
    from airflow.utils.log.file_task_handler import _fetch_logs_from_service

    port, _ = log_server
    relative = "dag_id=d/attempt=1.log"
    answer = _fetch_logs_from_service(f"http://127.0.0.1:{port}/log/{relative}", relative)
    assert answer.status_code == 200, answer.text
    assert answer.text == "the task's log line\n"
    # A token for another file than the one requested is refused.
    other = _fetch_logs_from_service(f"http://127.0.0.1:{port}/log/{relative}", "other.log")
    assert other.status_code == 403


def test_a_log_server_that_stops_unasked_stops_its_process(tmp_path: Path) -> None:
    """If the server's loop ends without being asked (here: uvicorn's request limit), the process gets SIGTERM."""
    script = (
        "import sys, time\n"
        "from mlwf_instance._log_server import start\n"
        "server = start(int(sys.argv[1]))\n"
        "print('listening', flush=True)\n"
        "# uvicorn's request limit: its loop ends, unasked (read from the config up to uvicorn\n"
        "# 0.37, from a cached property of the server since the limit got its jitter)\n"
        "server.config.limit_max_requests = 0\n"
        "server.limit_max_requests = 0\n"
        "time.sleep(60)\n"
        "print('still alive', flush=True)\n"
    )
    done = _python(["-c", script, str(free_port())], tmp_path)
    assert "listening" in done.stdout, done.stderr
    assert "still alive" not in done.stdout
    assert done.returncode == -15, (done.returncode, done.stderr)
    assert "the instance's log server stopped unasked" in done.stdout + done.stderr


def test_a_log_server_stopped_on_request_leaves_its_process_alone(tmp_path: Path) -> None:
    """``should_exit = True`` (the api-server shutting down) is asked for: no SIGTERM."""
    script = (
        "import sys, threading\n"
        "from mlwf_instance._log_server import start\n"
        "server = start(int(sys.argv[1]))\n"
        "server.should_exit = True\n"
        "(t,) = [t for t in threading.enumerate() if t.name == 'mlwf-log-server']\n"
        "t.join(timeout=30)\n"
        "print('stopped', not t.is_alive(), flush=True)\n"
    )
    done = _python(["-c", script, str(free_port())], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "stopped True" in done.stdout
    assert "stopped unasked" not in done.stdout + done.stderr  # Airflow logs to stdout
