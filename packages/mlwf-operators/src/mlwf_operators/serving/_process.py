"""Start the prediction service as a detached process group; find and stop it through a state file."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from mlwf_operators._procs import kill_tree
from mlwf_operators.artifacts import ArtifactNotFoundError, artifact_store_for


class ServingError(Exception):
    """The prediction service could not be started or stopped."""


class ModelNotFoundError(ServingError):
    """The model URI names no model artifact."""


class ServiceStartError(ServingError):
    """The service process died or did not become healthy in time."""


@dataclass(frozen=True)
class ServiceState:
    """What the stop side needs to find a running service (kept as JSON in the state file)."""

    pid: int
    create_time: float
    endpoint: str
    model_uri: str
    log_file: str


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(log_file: Path, lines: int = 30) -> str:
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return "  | (no log)"
    return "\n".join(f"  | {line}" for line in text) or "  | (empty log)"


def _healthy(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_service(
    model_uri: str,
    state_file: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    workers: int = 1,
    startup_timeout: float = 60.0,
    log_file: Path | None = None,
) -> ServiceState:
    """Launch the service for ``model_uri`` in its own process group and wait until it is healthy.

    The state file is written as soon as the process exists, so a stop can find it even if this
    call fails half-way; on any failure the process group is killed and the state file removed.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    store = artifact_store_for(model_uri)
    if not store.exists(model_uri):
        raise ModelNotFoundError(f"model URI {model_uri!r} does not exist; no service was started")
    try:
        model_dir = store.get_dir(model_uri, state_file.with_suffix(".model"))
    except ArtifactNotFoundError as exc:
        raise ModelNotFoundError(str(exc)) from exc
    if not (model_dir / "metadata.json").is_file():
        raise ModelNotFoundError(
            f"model URI {model_uri!r} holds no metadata.json; is it a model directory?"
        )
    if state_file.exists():
        raise ServingError(
            f"state file {state_file} exists: a service may still run; stop it first"
        )
    port = port or _free_port(host)
    endpoint = f"http://{host}:{port}"
    state_file.parent.mkdir(parents=True, exist_ok=True)
    log_path = log_file or state_file.with_suffix(".log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlwf_operators.serving",
                str(model_dir),
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # detached: its own session and process group
            close_fds=True,
        )
    state = ServiceState(
        pid=proc.pid,
        create_time=psutil.Process(proc.pid).create_time(),
        endpoint=endpoint,
        model_uri=model_uri,
        log_file=str(log_path),
    )
    partial = state_file.with_name(state_file.name + ".partial")
    partial.write_text(json.dumps(asdict(state)), encoding="utf-8")
    partial.replace(state_file)
    deadline = time.monotonic() + startup_timeout
    try:
        while True:
            code = proc.poll()
            if code is not None:
                raise ServiceStartError(
                    f"prediction service for {model_uri!r} exited with code {code} during start-up. "
                    f"Last lines of its log ({log_path}):\n{_log_tail(log_path)}"
                )
            if _healthy(endpoint):
                return state
            if time.monotonic() > deadline:
                raise ServiceStartError(
                    f"prediction service for {model_uri!r} was not healthy at {endpoint}/health after "
                    f"{startup_timeout:g} s; it was stopped. Last lines of its log ({log_path}):\n{_log_tail(log_path)}"
                )
            time.sleep(0.1)
    except BaseException:
        kill_tree(proc.pid, grace=2)
        proc.wait()
        state_file.unlink(missing_ok=True)
        raise


def read_state(state_file: Path) -> ServiceState | None:
    """Return the state in ``state_file``, or None when there is none."""
    try:
        return ServiceState(**json.loads(state_file.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def stop_service(state_file: Path, *, grace: float = 10.0) -> ServiceState | None:
    """Stop the service recorded in ``state_file`` (SIGTERM to its group, then SIGKILL); idempotent.

    Return the state of the service stopped, or None if there was nothing to stop. A pid that now
    belongs to another process (its start time differs) is left alone.
    """
    state = read_state(state_file)
    if state is None:
        return None
    try:
        proc = psutil.Process(state.pid)
        same = abs(proc.create_time() - state.create_time) < 0.01
    except psutil.NoSuchProcess:
        same = False
    if same:
        kill_tree(state.pid, grace=grace)
        # Reap it if it is our own child (the same process started and stops it).
        with contextlib.suppress(ChildProcessError):
            os.waitpid(state.pid, os.WNOHANG)
    state_file.unlink(missing_ok=True)
    return state
