"""Run the prediction service in the foreground: ``python -m mlwf_operators.serving MODEL_DIR``."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from mlwf_operators.serving._app import DEFAULT_MAX_BODY_BYTES, MAX_BODY_ENV, MODEL_DIR_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlwf_operators.serving", description=__doc__)
    parser.add_argument("model_dir", help="local directory holding model.joblib and metadata.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest /predict request body accepted; larger ones get 413 (default: 1 MiB)",
    )
    args = parser.parse_args(argv)
    if args.max_body_bytes < 1:
        parser.error(f"--max-body-bytes must be at least 1, got {args.max_body_bytes}")
    os.environ[MODEL_DIR_ENV] = args.model_dir
    # The app is built by a factory in each worker process: the environment carries the cap there.
    os.environ[MAX_BODY_ENV] = str(args.max_body_bytes)
    uvicorn.run(
        "mlwf_operators.serving._app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
