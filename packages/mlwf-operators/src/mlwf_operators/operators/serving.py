"""Serve a model as a detached HTTP prediction service, and stop it (a teardown task)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context
from mlwf_types import typed

from mlwf_operators.operators._ml_paths import service_state_file

__all__ = ["ServeModelOperator", "StopModelServiceOperator"]

# The service's default body cap (mlwf_operators.serving._app.DEFAULT_MAX_BODY_BYTES), not
# imported from there: that module imports numpy, too slow for a DAG file's parse.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@typed(
    inputs={
        "model_uri": str,
        "host": str,
        "port": int,
        "workers": int,
        "startup_timeout": float,
        "state_dir": str | None,
        "max_body_bytes": int,
    },
    outputs={"return_value": str},
)
class ServeModelOperator(BaseOperator):
    """Start a prediction service for a model and return its endpoint URL once it is healthy.

    The service (``POST /predict``, ``GET /health``, ``GET /metadata``) runs detached in its own
    process group and outlives the task; its pid and endpoint are recorded in a state file
    (under ``state_dir``, default ``$AIRFLOW_HOME/mlwf/services``) where
    :class:`StopModelServiceOperator` finds it. ``port=0`` picks a free port. A ``/predict``
    body larger than ``max_body_bytes`` (default 1 MiB) is answered 413.
    """

    template_fields = ("model_uri",)
    ui_color = "#fff1cc"

    def __init__(
        self,
        *,
        model_uri: str,
        host: str = "127.0.0.1",
        port: int = 0,
        workers: int = 1,
        startup_timeout: float = 60.0,
        state_dir: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if workers < 1:
            raise ValueError(f"task {self.task_id!r}: workers must be at least 1, got {workers}")
        if max_body_bytes < 1:
            raise ValueError(
                f"task {self.task_id!r}: max_body_bytes must be at least 1, got {max_body_bytes}"
            )
        self.max_body_bytes = max_body_bytes
        self.model_uri = model_uri
        self.host = host
        self.port = port
        self.workers = workers
        self.startup_timeout = float(startup_timeout)
        self.state_dir = state_dir

    def execute(self, context: Context) -> str:
        """Start the service and wait until it answers ``/health``; return its endpoint."""
        from mlwf_operators.serving import start_service

        ti = context["ti"]
        state_file = service_state_file(self.state_dir, ti.dag_id, ti.run_id, ti.task_id)
        state = start_service(
            self.model_uri,
            state_file,
            host=self.host,
            port=self.port,
            workers=self.workers,
            startup_timeout=self.startup_timeout,
            max_body_bytes=self.max_body_bytes,
        )
        self.log.info(
            "serving %s at %s (pid %d, state %s)",
            self.model_uri,
            state.endpoint,
            state.pid,
            state_file,
        )
        return state.endpoint


@typed(inputs={"serve_task_id": str, "state_dir": str | None, "grace": float}, outputs={})
class StopModelServiceOperator(BaseOperator):
    """Stop the prediction service a serve task of the same DAG run started; do nothing if none runs.

    Use it as a teardown: ``stop.as_teardown(setups=serve)`` stops the service even when a task
    between them fails. SIGTERM goes to the service's process group, SIGKILL after ``grace`` s.
    """

    ui_color = "#ffe0e0"

    def __init__(
        self,
        *,
        serve_task_id: str,
        state_dir: str | None = None,
        grace: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.serve_task_id = serve_task_id
        self.state_dir = state_dir
        self.grace = float(grace)

    def execute(self, context: Context) -> None:
        """Stop the recorded service (idempotent)."""
        from mlwf_operators.serving import stop_service

        ti = context["ti"]
        state_file: Path = service_state_file(
            self.state_dir, ti.dag_id, ti.run_id, self.serve_task_id
        )
        state = stop_service(state_file, grace=self.grace)
        if state is None:
            self.log.info("no service recorded at %s: nothing to stop", state_file)
        else:
            self.log.info(
                "stopped the service of %s at %s (pid %d)",
                state.model_uri,
                state.endpoint,
                state.pid,
            )
