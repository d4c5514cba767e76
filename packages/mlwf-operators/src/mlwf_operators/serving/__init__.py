"""The prediction service: a fast HTTP/JSON server for one model, started as a detached process."""

from __future__ import annotations

from mlwf_operators.serving._app import PredictionApp
from mlwf_operators.serving._process import (
    ModelNotFoundError,
    ServiceStartError,
    ServiceState,
    ServingError,
    model_copy_dir,
    read_state,
    start_service,
    stop_service,
)

__all__ = [
    "PredictionApp",
    "start_service",
    "stop_service",
    "read_state",
    "model_copy_dir",
    "ServiceState",
    "ServingError",
    "ModelNotFoundError",
    "ServiceStartError",
]
