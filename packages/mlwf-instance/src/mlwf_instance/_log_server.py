"""The log server of an embedded instance: Airflow's task-log app on loopback, in the api-server.

Airflow's log-server app (``airflow.utils.serve_logs``, requests JWT-checked with ``[api]
secret_key``) serves ``[logging] base_log_folder`` on ``127.0.0.1:N``. It replaces the log
servers that ``airflow scheduler``, ``airflow triggerer`` and ``airflow celery worker`` start
themselves (run with ``--skip-serve-logs``): those bind every interface, on fixed ports 8793 and
8794, so two instances on one machine collide and other hosts can connect. Worker and triggerer
logs share one folder, so one server on one port serves both.

Its one client is the api-server, which fetches the log of a running or deferred task from it
(the file on disk is read directly once the task ends). So it runs inside the api-server's
process, in a thread of its own (:mod:`mlwf_instance._api_server`), rather than as a process
of its own: a separate process imports Airflow once more (about 120 MiB of PSS, measured by
``benchmarks/instance_footprint``) to serve a request now and then. If the server stops after it
started without being asked to (an error in its loop), it sends SIGTERM to its own process: the
api-server stops and the instance's supervisor sees it, rather than a healthy-looking api-server
whose running tasks' logs can no longer be read.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING

from mlwf_instance._net import LOOPBACK

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

#: How long the api-server waits for its log server to listen before it gives up.
START_TIMEOUT = 60.0


class LogServerError(RuntimeError):
    """The log server did not start listening."""


def start(port: int, *, timeout: float = START_TIMEOUT) -> uvicorn.Server:
    """Serve the instance's task logs on ``127.0.0.1:port`` from a daemon thread; return the server.

    Returns once the server listens (``should_exit = True`` stops it). Raises :class:`LogServerError` if it stopped before (the
    port is taken: uvicorn has logged why) or did not listen within ``timeout`` seconds.
    """
    import uvicorn  # an Airflow dependency
    from airflow.utils.serve_logs.log_server import get_app

    config = uvicorn.Config(
        get_app(),
        host=LOOPBACK,
        port=port,
        log_level="warning",
        log_config=None,  # keep Airflow's logging set-up, as its api-server does
        access_log=False,  # the log server serves file content; access lines are noise
        lifespan="off",
    )
    server = uvicorn.Server(config)  # in a thread, it installs no signal handler
    thread = threading.Thread(target=_serve, args=(server,), name="mlwf-log-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise LogServerError(
                f"the instance's log server could not listen on {LOOPBACK}:{port} "
                "(see the lines above)"
            )
        if time.monotonic() > deadline:
            raise LogServerError(
                f"the instance's log server did not listen on {LOOPBACK}:{port} "
                f"within {timeout:.0f} s"
            )
        time.sleep(0.02)
    return server


def _serve(server: uvicorn.Server) -> None:
    """Run ``server``; if it stops unasked after it started, stop this process (SIGTERM)."""
    try:
        server.run()
    except Exception:
        log.exception("the instance's log server failed")
    if server.started and not server.should_exit:
        log.error(
            "the instance's log server stopped unasked; stopping this process (pid %d) so that "
            "the instance notices",
            os.getpid(),
        )
        os.kill(os.getpid(), signal.SIGTERM)
