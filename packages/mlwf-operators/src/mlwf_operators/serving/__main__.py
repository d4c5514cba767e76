"""Run the prediction service in the foreground: ``python -m mlwf_operators.serving MODEL_DIR``."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from mlwf_operators.serving._app import MODEL_DIR_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlwf_operators.serving", description=__doc__)
    parser.add_argument("model_dir", help="local directory holding model.joblib and metadata.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ[MODEL_DIR_ENV] = args.model_dir
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
