"""The api-server of an embedded instance, with the instance's log server in its process.

``python -m mlwf_instance._api_server LOG_PORT [ARGS...]`` starts the log server
(:mod:`mlwf_instance._log_server`) on ``127.0.0.1:LOG_PORT`` in a thread, then runs
``airflow api-server ARGS...`` in this process. If the log server cannot listen it exits with
status 1 and says why, before the api-server starts: the instance's start then fails on the
api-server, whose log holds the message.

With ``[api] workers`` above 1, uvicorn's worker processes are fresh interpreters (spawned):
the log server runs once, in the process that supervises them.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence

from mlwf_instance._log_server import LogServerError, start

USAGE = "usage: python -m mlwf_instance._api_server LOG_PORT [AIRFLOW API-SERVER ARGS...]"


def main(argv: Sequence[str] | None = None) -> None:
    """Start the log server, then ``airflow api-server`` with the remaining arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or not args[0].isdigit() or not 0 < int(args[0]) < 65536:
        sys.exit(USAGE)
    try:
        start(int(args[0]))
    except LogServerError as error:
        sys.exit(f"mlwf: {error}")
    sys.argv = ["airflow", "api-server", *args[1:]]
    runpy.run_module("airflow", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
