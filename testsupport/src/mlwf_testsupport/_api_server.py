"""A bare ``airflow api-server`` for tests and benchmarks of packages that run without mlwf-instance.

:func:`airflow_api_server` starts ``python -m airflow api-server`` on loopback in a process
group of its own, waits until ``/api/v2/monitor/health`` answers, yields its URL and stops the
whole group with Airflow's own ``reap_process_group`` (SIGTERM, then SIGKILL after a grace
time: uvicorn's workers go with it). The environment (home, database, auth manager) is the
caller's; ``[api] base_url`` is set to the URL. Airflow is imported only when it stops.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from mlwf_testsupport._poll import poll
from mlwf_testsupport._ports import free_port

#: The api-server of a test is healthy within this many seconds (cold imports on 2 cores).
START_TIMEOUT = 180.0

#: Chromium switches for headless tests on this machine kind (Debian's chromium, no sandbox).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@contextmanager
def airflow_api_server(
    env: Mapping[str, str], log: Path, *, port: int | None = None
) -> Iterator[str]:
    """Run an api-server with ``env`` (output into ``log``) until the block ends; yield its URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow",
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env={**env, "AIRFLOW__API__BASE_URL": url},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: reaped as one
        )
    try:

        def healthy() -> bool | None:
            if process.poll() is not None:
                raise RuntimeError(f"the api-server exited: {log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{url}/api/v2/monitor/health", timeout=2).is_success or None
            except httpx.HTTPError:
                return None

        poll(healthy, START_TIMEOUT, "the api-server to answer")
        yield url
    finally:
        from airflow.utils.process_utils import reap_process_group

        if process.poll() is None:
            reap_process_group(process.pid, logging.getLogger(__name__), timeout=20)
        process.wait(timeout=10)
