"""A small threaded loopback HTTP server that fakes implement by answering parsed requests.

Each fake subclasses :class:`FakeHttpServer`, implements :meth:`FakeHttpServer.handle` and
:meth:`FakeHttpServer.error_response` (the system's own error format), and gets error injection
(:meth:`FakeHttpServer.inject_error`) and a request log for free.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One HTTP request as a fake sees it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """Return the body parsed as JSON (``None`` when empty)."""
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        """Return header ``name`` (case-insensitive) or ``None``."""
        return self.headers.get(name.lower())


@dataclass
class Response:
    """One HTTP response a fake returns."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        """Return a JSON response."""
        merged = {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}
        return cls(status, json.dumps(payload).encode(), merged)


@dataclass
class _Injection:
    status: int
    message: str
    method: str | None
    path_contains: str | None
    remaining: int


class FakeHttpServer:
    """Base of the fakes: serve on 127.0.0.1 in a daemon thread; use as a context manager."""

    #: Name of the faked system, used in log lines and error messages.
    system = "fake"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._injections: list[_Injection] = []
        #: Every request served, in order (method, path with query).
        self.requests: list[tuple[str, str]] = []

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind and start serving; return self."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"{self.system}-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        assert self._server is not None, f"{self.system} fake is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self._host}:{self.port}"

    # error injection -----------------------------------------------------------------------
    def inject_error(
        self,
        status: int,
        message: str = "injected failure",
        *,
        method: str | None = None,
        path_contains: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` in the system's error format."""
        with self._lock:
            self._injections.append(_Injection(status, message, method, path_contains, times))

    def _take_injection(self, request: Request) -> _Injection | None:
        with self._lock:
            for injection in self._injections:
                if injection.method and injection.method != request.method:
                    continue
                target = request.path + "?" + "&".join(f"{k}={v}" for k, v in request.query.items())
                if injection.path_contains and injection.path_contains not in target:
                    continue
                injection.remaining -= 1
                if injection.remaining <= 0:
                    self._injections.remove(injection)
                return injection
        return None

    # to implement ----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Answer ``request``."""
        raise NotImplementedError

    def error_response(self, status: int, message: str, request: Request) -> Response:
        """Return an error in the system's documented format."""
        return Response.json(status, {"message": message})

    # plumbing --------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _read_chunked(handler)
        request = Request(
            method=handler.command,
            path=split.path,
            query={k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append((request.method, handler.path))
        injection = self._take_injection(request)
        try:
            if injection is not None:
                response = self.error_response(injection.status, injection.message, request)
            else:
                response = self.handle(request)
        except Exception as exc:  # a bug in the fake must be visible, not a hung client
            response = self.error_response(500, f"{type(exc).__name__}: {exc}", request)
        handler.send_response(response.status)
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(response.body)))
        handler.end_headers()
        if request.method != "HEAD":
            handler.wfile.write(response.body)


def _read_chunked(handler: BaseHTTPRequestHandler) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int(handler.rfile.readline().strip() or b"0", 16)
        if size == 0:
            handler.rfile.readline()
            return b"".join(chunks)
        chunks.append(handler.rfile.read(size))
        handler.rfile.readline()
