"""Start a real MLflow tracking server (SQLite backend) for a test session, stop it by PID."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from mlwf_testsupport._ports import free_port
from mlwf_testsupport._services import require_service


@contextmanager
def mlflow_server(
    workdir: Path, *, env: dict[str, str] | None = None, startup_timeout: float = 180.0
) -> Iterator[str]:
    """Run ``mlflow server`` with a SQLite store under ``workdir``; yield its tracking URI.

    ``env`` adds server environment variables (e.g.
    ``MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES``). Skips (or fails under ``MLWF_REQUIRE_SERVICES=1``) when the ``mlflow`` server is not installed.
    """
    # Imported here, not at the top: mlwf_testsupport serves every package's tests and most
    # environments lack mlwf-operators; this fake serves mlwf-operators' MLflow tests only.
    from mlwf_operators.processes import (
        HealthCheckError,
        kill_tree,
        tail_file,
        wait_until_healthy,
    )

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
    port = free_port()
    log = (workdir / "mlflow-server.log").open("wb")
    process = subprocess.Popen(
        [
            executable, "server",
            "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
            "--default-artifact-root", str(workdir / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    server = psutil.Process(process.pid)  # remembers the start time: finds its group after an exit
    try:
        try:
            wait_until_healthy(f"{uri}/health", process=process, timeout=startup_timeout)
        except HealthCheckError as err:
            raise RuntimeError(
                f"mlflow server did not start: {err}; log:\n"
                + tail_file(workdir / "mlflow-server.log", 60)
            ) from None
        yield uri
    finally:
        kill_tree(server, grace=15)
        process.wait()
        log.close()
