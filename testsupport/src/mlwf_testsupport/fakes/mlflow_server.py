"""Start a real MLflow tracking server (SQLite backend) for a test session, stop it by PID."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

from mlwf_testsupport._ports import free_port
from mlwf_testsupport._processes import process_tree
from mlwf_testsupport._services import require_service


@contextmanager
def mlflow_server(
    workdir: Path, *, env: dict[str, str] | None = None, startup_timeout: float = 180.0
) -> Iterator[str]:
    """Run ``mlflow server`` with a SQLite store under ``workdir``; yield its tracking URI.

    ``env`` adds server environment variables (e.g.
    ``MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES``). Skips (or fails under ``MLWF_REQUIRE_SERVICES=1``) when the ``mlflow`` server is not installed.
    """
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
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {process.returncode}; log:\n"
                    + (workdir / "mlflow-server.log").read_text(errors="replace")[-3000:]
                )
            try:
                if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server on {uri} not healthy after {startup_timeout} s")
            time.sleep(0.3)
        yield uri
    finally:
        tree = process_tree(process.pid)
        for proc in reversed(tree):
            with suppress(Exception):
                proc.terminate()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for proc in tree:
            try:
                proc.wait(timeout=5)
            except Exception:
                with suppress(Exception):
                    proc.kill()
        log.close()
