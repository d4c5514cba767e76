"""Fixtures shared by the operator tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mlwf_operators.trainers import run_trainer


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory written once per session by the reference scikit-learn trainer (read-only for tests)."""
    out = tmp_path_factory.mktemp("model") / "model"
    run_trainer(
        "mlwf_operators.trainers.sklearn_reference",
        {"C": 1.0},
        "sklearn://breast_cancer",
        out,
        timeout=120,
        log_line=lambda _: None,
    )
    return out


@pytest.fixture
def health_server() -> Iterator[tuple[str, list[int]]]:
    """Serve GET /health on loopback with the status codes in the list, then 200."""
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses.pop(0) if statuses else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health", statuses
    finally:
        server.shutdown()
        server.server_close()
