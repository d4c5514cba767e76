"""The ``mlwf-stats-bridge`` command: ``serve`` (an exporter for Prometheus) and ``dashboard``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from prometheus_client import CONTENT_TYPE_LATEST

from mlwf_stats_bridge._dashboard import dashboard
from mlwf_stats_bridge._exposition import exposition


def _serve(directory: Path, host: str, port: int) -> int:
    if not directory.is_dir():
        print(
            f"mlwf-stats-bridge serve: metrics directory {directory} does not exist "
            f"(set PROMETHEUS_MULTIPROC_DIR or --dir)",
            file=sys.stderr,
        )
        return 2

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served")
                return
            body = exposition(directory)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as err:
        print(f"mlwf-stats-bridge serve: cannot listen on {host}:{port}: {err}", file=sys.stderr)
        return 2

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"mlwf-stats-bridge: serving {directory} at http://{host}:{server.server_port}/metrics",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(prog="mlwf-stats-bridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve /metrics of every process, without auth")
    serve.add_argument("--port", type=int, default=9112)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="multiprocess directory (default: $PROMETHEUS_MULTIPROC_DIR)",
    )
    dash = sub.add_parser("dashboard", help="print a Grafana dashboard JSON for one instance")
    dash.add_argument("--instance", required=True, help="value of the mlwf_instance label")
    dash.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    if args.command == "serve":
        directory = args.dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            parser.error("serve needs --dir or PROMETHEUS_MULTIPROC_DIR")
        return _serve(Path(directory), args.host, args.port)
    try:
        board = dashboard(args.instance, title=args.title)
    except ValueError as err:
        parser.error(str(err))
    json.dump(board, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
