"""A bare ``airflow api-server`` for tests and benchmarks of packages that run without mlwf-instance.

:func:`airflow_api_server` starts ``python -m airflow api-server`` on loopback in a process
group of its own, waits until ``/api/v2/monitor/health`` answers and the api-server itself listens
on the port (not another test's server that took the port first), yields its URL and stops the
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

from mlwf_testsupport._listen import start_on_free_port

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
    """Run an api-server with ``env`` (output into ``log``) until the block ends; yield its URL.

    Without ``port`` it takes a free one, and a new one when another process (another xdist
    worker's server) binds it first; a ``port`` the caller chose fails with
    :class:`~mlwf_testsupport.PortTakenError` then. Ready means: ``/api/v2/monitor/health``
    answers 200 *and* this api-server (or one of its workers) listens on the port, for any
    api-server answers that health check without a login.
    """

    with log.open("wb") as out:  # every attempt writes here: a retry keeps the first's output

        def start(chosen: int) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "airflow",
                    "api-server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(chosen),
                ],
                env={**env, "AIRFLOW__API__BASE_URL": _url(chosen)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: reaped as one
            )

        process, port = start_on_free_port(
            start,
            _stop,
            what="the api-server",
            timeout=START_TIMEOUT,
            port=port,
            ready=_healthy,
            log=log,
        )
    try:
        yield _url(port)
    finally:
        _stop(process)


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"{_url(port)}/api/v2/monitor/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    from airflow.utils.process_utils import reap_process_group

    if process.poll() is None:
        reap_process_group(process.pid, logging.getLogger(__name__), timeout=20)
    process.wait(timeout=10)
