"""The log server of an embedded instance: Airflow's task-log app on loopback only.

``python -m mlwf_instance._log_server --port N`` serves ``[logging] base_log_folder`` with
Airflow's own log-server app (``airflow.utils.serve_logs``, JWT-checked with ``[api] secret_key``)
on ``127.0.0.1:N``. It replaces the log servers that ``airflow scheduler`` and ``airflow
triggerer`` start themselves (run with ``--skip-serve-logs``): those bind every interface, on
fixed ports 8793 and 8794, so two instances on one machine collide and other hosts can connect.
Worker and triggerer logs share one folder, so one server on one port serves both.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mlwf_instance._net import LOOPBACK


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the instance's task logs on the loopback interface until stopped."""
    parser = argparse.ArgumentParser(prog="python -m mlwf_instance._log_server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn  # an Airflow dependency; imported late: --help needs no server

    uvicorn.run(
        "airflow.utils.serve_logs.log_server:get_app",
        factory=True,
        host=LOOPBACK,
        port=args.port,
        log_level="warning",
        access_log=False,  # the log server serves file content; access lines are noise
    )


if __name__ == "__main__":
    main()
