"""The prediction service: a raw ASGI app over one scikit-learn-style model.

Routes: ``POST /predict`` (``{"instances": [[...], ...]}`` → ``{"predictions": [...]}``),
``GET /health``, ``GET /metadata``. A raw ASGI callable with orjson and one numpy batch predict
per request keeps the per-request cost low: no routing framework, no validation layer.
"""

from __future__ import annotations

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
_JSON = [(b"content-type", b"application/json")]
MAX_BODY = 64 * 1024 * 1024


class PredictionApp:
    """Serve predictions of ``model`` (anything with ``predict(ndarray)``) described by ``metadata``."""

    def __init__(self, model: Any, metadata: dict[str, Any]) -> None:
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
            body = await _read_body(receive)
            if body is None:
                await _respond(send, 413, {"error": f"request body larger than {MAX_BODY} bytes"})
                return
            status, payload = self.predict(body)
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

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(receive: Receive) -> bytes | None:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _send_bytes(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _respond(send: Send, status: int, payload: dict[str, Any]) -> None:
    await _send_bytes(send, status, orjson.dumps(payload))


def create_app() -> PredictionApp:
    """Build the app for the model directory named by ``$MLWF_SERVING_MODEL_DIR`` (uvicorn factory)."""
    from mlwf_operators.trainers.sklearn_reference import load_model

    model, metadata = load_model(Path(os.environ[MODEL_DIR_ENV]))
    return PredictionApp(model, metadata)
