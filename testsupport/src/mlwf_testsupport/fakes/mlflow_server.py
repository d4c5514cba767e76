"""Start a real MLflow tracking server (SQLite backend) for a test session, stop it by PID."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from mlwf_testsupport._listen import start_on_free_port
from mlwf_testsupport._services import require_service


@contextmanager
def mlflow_server(
    workdir: Path, *, env: dict[str, str] | None = None, startup_timeout: float = 180.0
) -> Iterator[str]:
    """Run ``mlflow server`` with a SQLite store under ``workdir``; yield its tracking URI.

    ``env`` adds server environment variables (e.g.
    ``MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES``). Skips (or fails under ``MLWF_REQUIRE_SERVICES=1``) when the ``mlflow`` server is not installed.
    A port another process took first is retried on a new one; :class:`~mlwf_testsupport.ServerStartError`
    when the server exits otherwise or is not healthy within ``startup_timeout`` s.
    """
    # Imported here, not at the top: mlwf_testsupport serves every package's tests and most
    # environments lack mlwf-operators; this fake serves mlwf-operators' MLflow tests only.
    from mlwf_operators.processes import kill_tree

    executable = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which(
        "mlflow"
    )
    if executable is None:
        require_service("mlflow", "the `mlflow` executable (PyPI package mlflow) is not installed")
    try:
        import mlflow.server  # noqa: F401  (the full server, not mlflow-skinny)
    except ImportError as exc:
        require_service("mlflow", f"the MLflow server is not installed ({exc})")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "mlflow-server.log"
    with log_path.open("wb") as log:  # every attempt writes here: a retry keeps the first's output
        # Each attempt's server, taken at its start: remembers the start time, so kill_tree finds
        # its process group (uvicorn's workers) even after the leader exited.
        started: dict[int, psutil.Process] = {}

        def start(port: int) -> subprocess.Popen[bytes]:
            process = subprocess.Popen(
                [
                    executable, "server",
                    "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
                    "--default-artifact-root", str(workdir / "artifacts"),
                    "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                ],
                stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True, env={**os.environ, **(env or {})},
            )  # fmt: skip
            started[process.pid] = psutil.Process(process.pid)
            return process

        def stop(process: subprocess.Popen[bytes]) -> None:
            kill_tree(started[process.pid], grace=15)
            process.wait()

        def healthy(port: int) -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).is_success
            except httpx.HTTPError:
                return False

        # Ready once this server (or its workers) listens on the port and /health answers:
        # another xdist worker's server may bind the port first and answer /health for ours.
        process, port = start_on_free_port(
            start, stop, what="mlflow server", timeout=startup_timeout, ready=healthy, log=log_path
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)
