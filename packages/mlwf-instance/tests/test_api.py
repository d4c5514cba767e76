"""The REST helpers: health interpretation and JWT login against a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlwf_instance import AuthenticationError, get_api_token
from mlwf_instance._api import unhealthy_components

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _health(beat: str) -> dict[str, object]:
    doc: dict[str, object] = {"metadatabase": {"status": "healthy"}}
    for name in ("scheduler", "triggerer", "dag_processor"):
        doc[name] = {"status": "healthy", f"latest_{name}_heartbeat": beat}
    return doc


def test_fresh_heartbeats_are_healthy() -> None:
    """Every component healthy with heartbeats after the start time means nothing is unhealthy."""
    assert unhealthy_components(_health("2026-01-01T12:00:05+00:00"), since=NOW) == []


def test_heartbeats_of_a_previous_run_do_not_count() -> None:
    """Heartbeats older than the start time (a previous run on the same home) count as unhealthy."""
    assert unhealthy_components(_health("2026-01-01T11:59:50+00:00"), since=NOW) == [
        "scheduler",
        "triggerer",
        "dag_processor",
    ]


def test_a_restarted_component_needs_a_heartbeat_after_its_restart() -> None:
    """A per-component time overrides the start time: a restarted scheduler's old beat is unhealthy."""
    restarted = datetime(2026, 1, 1, 12, 1, tzinfo=UTC)
    health = _health("2026-01-01T12:00:30+00:00")
    assert unhealthy_components(health, since=NOW, since_by_component={"scheduler": restarted}) == [
        "scheduler"
    ]


def test_no_answer_means_everything_is_unhealthy() -> None:
    """Without a health document the API server and all components are reported."""
    assert unhealthy_components(None)[0] == "api-server"


class _TokenHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/auth/token" and body == {"username": "admin", "password": "right"}:
            status, payload = 201, {"access_token": "jwt-123"}
        else:
            status, payload = 401, {"detail": "Invalid credentials"}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def token_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_token_is_returned_for_good_credentials(token_server: str) -> None:
    """get_api_token posts JSON credentials to /auth/token and returns access_token."""
    assert get_api_token(token_server, "admin", "right") == "jwt-123"


def test_bad_credentials_raise_with_status_and_user(token_server: str) -> None:
    """A refused login raises AuthenticationError naming the user and the HTTP status."""
    with pytest.raises(AuthenticationError, match=r"'admin' failed with HTTP 401"):
        get_api_token(token_server, "admin", "wrong")
