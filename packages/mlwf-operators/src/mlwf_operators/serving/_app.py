"""The prediction service: a raw ASGI app over one scikit-learn-style model.

Routes: ``POST /predict`` (``{"instances": [[...], ...]}`` → ``{"predictions": [...]}``),
``GET /health``, ``GET /metadata``. A raw ASGI callable with orjson and one numpy batch predict
per request keeps the per-request cost low: no routing framework, no validation layer.

A request body is capped (``max_body_bytes``, default 1 MiB; 413 when over it, checked from
``Content-Length`` before reading and again while the body streams in), and parsing and
prediction run in a worker thread, never on the event loop: a large or slow prediction must not
stall ``/health`` and the other requests of the worker.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MODEL_DIR_ENV = "MLWF_SERVING_MODEL_DIR"
MAX_BODY_ENV = "MLWF_SERVING_MAX_BODY_BYTES"
#: The default cap of a ``/predict`` request body: 1 MiB holds roughly 2,000 rows of 30 full-precision floats.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_JSON = [(b"content-type", b"application/json")]


class _BodyTooLarge(Exception):
    """The request body is larger than the cap."""


class PredictionApp:
    """Serve predictions of ``model`` (anything with ``predict(ndarray)``) described by ``metadata``."""

    def __init__(
        self,
        model: Any,
        metadata: dict[str, Any],
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {max_body_bytes}")
        self.max_body_bytes = max_body_bytes
        self.model = model
        self.metadata = metadata
        self.n_features: int | None = metadata.get("n_features")
        self._metadata_body = orjson.dumps(metadata)
        self._health_body = orjson.dumps({"status": "ok"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/predict":
            if method != "POST":
                await _respond(send, 405, {"error": "use POST /predict"})
                return
            try:
                body = await self._read_body(scope, receive)
            except _BodyTooLarge as exc:
                await _respond(send, 413, {"error": str(exc)})
                return
            except ValueError as exc:
                await _respond(send, 400, {"error": str(exc)})
                return
            if body is None:  # the client went away: nobody to answer
                return
            # Parsing and predicting hold the CPU for as long as the body is large or the model
            # slow: a worker thread keeps the event loop answering the other requests meanwhile.
            status, payload = await asyncio.to_thread(self.predict, body)
            await _send_bytes(send, status, payload)
        elif path == "/health" and method == "GET":
            await _send_bytes(send, 200, self._health_body)
        elif path == "/metadata" and method == "GET":
            await _send_bytes(send, 200, self._metadata_body)
        else:
            await _respond(
                send,
                404,
                {
                    "error": f"no route {method} {path}; routes: POST /predict, GET /health, GET /metadata"
                },
            )

    def predict(self, body: bytes) -> tuple[int, bytes]:
        """Return the status and JSON body answering one ``/predict`` request body."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return 400, orjson.dumps({"error": f"request body is not valid JSON: {exc}"})
        if not isinstance(request, dict) or "instances" not in request:
            return 422, orjson.dumps(
                {
                    "error": 'request must be a JSON object with key "instances": [[feature, ...], ...]'
                }
            )
        instances = request["instances"]
        if not isinstance(instances, list) or not instances:
            return 422, orjson.dumps(
                {"error": '"instances" must be a non-empty list of feature rows'}
            )
        try:
            batch = np.asarray(instances, dtype=np.float64)
        except (ValueError, TypeError):
            return 422, orjson.dumps(
                {
                    "error": '"instances" must be rows of numbers of equal length (a ragged or non-numeric row was sent)'
                }
            )
        if batch.ndim != 2:
            return 422, orjson.dumps(
                {"error": f'"instances" must be a list of rows (2-D); got {batch.ndim}-D data'}
            )
        if self.n_features is not None and batch.shape[1] != self.n_features:
            return 422, orjson.dumps(
                {
                    "error": f"each instance must have {self.n_features} features; got {batch.shape[1]}"
                }
            )
        if not np.isfinite(batch).all():
            return 422, orjson.dumps({"error": '"instances" contain NaN or infinite values'})
        predictions = self.model.predict(batch)
        return 200, orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)

    def _too_large(self, size: str) -> _BodyTooLarge:
        return _BodyTooLarge(
            f"request body of {size} is larger than this service's limit of {self.max_body_bytes} "
            f"bytes; send fewer instances per request (the limit is max_body_bytes of "
            f"ServeModelOperator / start_service)"
        )

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """Return the request body (None if the client disconnected), or raise :class:`_BodyTooLarge`."""
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise ValueError(
                        f"Content-Length header {value.decode('latin-1')!r} is not a number"
                    ) from None
                if declared > self.max_body_bytes:
                    raise self._too_large(f"{declared} bytes (Content-Length)")
        body = bytearray()
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            # A chunked body declares no length: stop reading as soon as it passes the cap.
            if len(body) > self.max_body_bytes:
                raise self._too_large(f"more than {self.max_body_bytes} bytes")
            more_body = message.get("more_body", False)
        return bytes(body)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _send_bytes(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _respond(send: Send, status: int, payload: dict[str, Any]) -> None:
    await _send_bytes(send, status, orjson.dumps(payload))


def create_app() -> PredictionApp:
    """Build the app for the model directory ``$MLWF_SERVING_MODEL_DIR`` (uvicorn factory).

    The body cap is ``$MLWF_SERVING_MAX_BODY_BYTES`` (default 1 MiB).
    """
    from mlwf_operators.trainers.sklearn_reference import load_model

    max_body_bytes = int(os.environ.get(MAX_BODY_ENV) or DEFAULT_MAX_BODY_BYTES)
    model, metadata = load_model(Path(os.environ[MODEL_DIR_ENV]))
    return PredictionApp(model, metadata, max_body_bytes=max_body_bytes)
