"""Start the prediction service as a detached process group; find and stop it through a state file."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from mlwf_operators._errors import (
    ModelNotFoundError as ModelNotFoundError,
    ServiceStartError as ServiceStartError,
    ServingError as ServingError,
)
from mlwf_operators.artifacts import ArtifactNotFoundError, artifact_store_for
from mlwf_operators.model_files import read_verified_model_bytes
from mlwf_operators.processes import (
    PortTakenError,
    ServerExitedError,
    ServerNotHealthyError,
    kill_tree,
    quote_log,
    tail_file,
    wait_until_healthy,
)
from mlwf_operators.serving._app import DEFAULT_MAX_BODY_BYTES


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
    return quote_log(tail_file(log_file, lines).splitlines(), empty="(empty log)")


def start_service(
    model_uri: str,
    state_file: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    workers: int = 1,
    startup_timeout: float = 60.0,
    log_file: Path | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> ServiceState:
    """Launch the service for ``model_uri`` in its own process group and wait until it is healthy.

    The state file is written as soon as the process exists, so a stop can find it even if this
    call fails half-way; on any failure the process group is killed and the state file removed.
    A model the store copies to the local disk (HDFS) lives beside the state file while the
    service runs; :func:`stop_service` removes it, and so does a failed start.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be at least 1, got {max_body_bytes}")
    if state_file.exists():
        raise ServingError(
            f"state file {state_file} exists: a service may still run; stop it first"
        )
    store = artifact_store_for(model_uri)
    if not store.exists(model_uri):
        raise ModelNotFoundError(f"model URI {model_uri!r} does not exist; no service was started")
    copy_dir = model_copy_dir(state_file)
    # No state file, so no service uses a copy found here: a start killed before it cleaned up.
    shutil.rmtree(copy_dir, ignore_errors=True)
    try:
        return _start(
            store.get_dir,
            model_uri,
            state_file,
            copy_dir,
            host=host,
            port=port,
            workers=workers,
            startup_timeout=startup_timeout,
            log_file=log_file,
            max_body_bytes=max_body_bytes,
        )
    except BaseException:
        shutil.rmtree(copy_dir, ignore_errors=True)
        raise


def model_copy_dir(state_file: Path) -> Path:
    """Return where the local copy of a service's model goes (for stores that copy, such as HDFS)."""
    return state_file.with_suffix(".model")


def _start(
    get_dir: Callable[[str, Path], Path],
    model_uri: str,
    state_file: Path,
    copy_dir: Path,
    *,
    host: str,
    port: int,
    workers: int,
    startup_timeout: float,
    log_file: Path | None,
    max_body_bytes: int,
) -> ServiceState:
    try:
        model_dir = get_dir(model_uri, copy_dir)
    except ArtifactNotFoundError as exc:
        raise ModelNotFoundError(str(exc)) from exc
    if not (model_dir / "metadata.json").is_file():
        raise ModelNotFoundError(
            f"model URI {model_uri!r} holds no metadata.json; is it a model directory?"
        )
    # Refuse an unsafe or tampered model file here, naming it, rather than as a start-up crash
    # in the log of a process (the service checks it again before it loads it).
    read_verified_model_bytes(model_dir)
    advice = "start it again (port 0: a new free port)" if port == 0 else "choose another port"
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
                "--max-body-bytes",
                str(max_body_bytes),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # detached: its own session and process group
            close_fds=True,
        )
    leader = psutil.Process(proc.pid)  # remembers the start time: finds the group after an exit
    state = ServiceState(
        pid=proc.pid,
        create_time=leader.create_time(),
        endpoint=endpoint,
        model_uri=model_uri,
        log_file=str(log_path),
    )
    partial = state_file.with_name(state_file.name + ".partial")
    partial.write_text(json.dumps(asdict(state)), encoding="utf-8")
    partial.replace(state_file)
    try:
        try:
            # Healthy only once our process tree listens on the port: one chosen in advance
            # (ours or the caller's) may be taken by another server before uvicorn binds it.
            wait_until_healthy(f"{endpoint}/health", process=proc, timeout=startup_timeout)
        except PortTakenError as err:
            holder = "another process" if err.pid is None else f"another process (pid {err.pid})"
            raise ServiceStartError(
                f"prediction service for {model_uri!r} could not listen on {host} port {port}: "
                f"{holder} took it first, and the service exited with code {err.returncode}; "
                f"{advice}. "
                f"Last lines of its log ({log_path}):\n{_log_tail(log_path)}"
            ) from None
        except ServerExitedError as err:
            raise ServiceStartError(
                f"prediction service for {model_uri!r} exited with code {err.returncode} during start-up. "
                f"Last lines of its log ({log_path}):\n{_log_tail(log_path)}"
            ) from None
        except ServerNotHealthyError as err:
            why = f" ({err.reason})" if err.reason else ""
            raise ServiceStartError(
                f"prediction service for {model_uri!r} was not healthy at {endpoint}/health after "
                f"{startup_timeout:g} s{why}; it was stopped. Last lines of its log ({log_path}):\n{_log_tail(log_path)}"
            ) from None
        return state
    except BaseException:
        kill_tree(leader, grace=2)
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

    The service's local model copy (see :func:`start_service`) is removed with it.

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
        kill_tree(proc, grace=grace)
        # Reap it if it is our own child (the same process started and stops it).
        with contextlib.suppress(ChildProcessError):
            os.waitpid(state.pid, os.WNOHANG)
    # The service is gone: its local model copy (HDFS models) goes with it, before the state
    # file, so a stop interrupted half-way is repeated by the next one.
    shutil.rmtree(model_copy_dir(state_file), ignore_errors=True)
    state_file.unlink(missing_ok=True)
    return state
