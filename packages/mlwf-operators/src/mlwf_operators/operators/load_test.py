"""Load-test an HTTP endpoint and check its service-level objectives."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import BaseOperator, Context
from mlwf_types import typed

from mlwf_operators._errors import SLOMissedError as SLOMissedError
from mlwf_operators.loadgen import LoadTestResult  # its own small module: see loadgen._LAZY

__all__ = ["LoadTestOperator", "SLOMissedError", "check_slos"]


def check_slos(
    result: LoadTestResult, max_p99_ms: float | None, max_error_rate: float | None
) -> list[str]:
    """Return one message per objective ``result`` misses, saying by how much."""
    misses = []
    if max_p99_ms is not None and result["p99_ms"] > max_p99_ms:
        over = result["p99_ms"] - max_p99_ms
        misses.append(
            f"p99 latency {result['p99_ms']:.2f} ms exceeds max_p99_ms={max_p99_ms:g} by {over:.2f} ms"
        )
    if max_error_rate is not None and result["error_rate"] > max_error_rate:
        over = result["error_rate"] - max_error_rate
        misses.append(
            f"error rate {result['error_rate']:.4f} ({result['errors']} of {result['requests']}) exceeds "
            f"max_error_rate={max_error_rate:g} by {over:.4f}"
        )
    return misses


@typed(
    inputs={
        "endpoint": str,
        "path": str,
        "method": str,
        "payload": dict[str, Any] | None,
        "rate": float | None,
        "concurrency": int,
        "duration": float,
        "request_timeout": float,
        "max_p99_ms": float | None,
        "max_error_rate": float | None,
    },
    outputs={"return_value": LoadTestResult},
)
class LoadTestOperator(BaseOperator):
    """Load an endpoint for a while and fail when a declared SLO is missed; return the numbers.

    With ``rate`` (requests/s) the load is open-loop (latency from each request's scheduled time),
    otherwise closed-loop with ``concurrency`` connections. ``payload`` is sent as a JSON body.
    SLOs: ``max_p99_ms`` and ``max_error_rate`` (0..1).
    """

    template_fields = ("endpoint", "path", "payload")
    ui_color = "#efe0ff"

    def __init__(
        self,
        *,
        endpoint: str,
        path: str = "/predict",
        method: str = "POST",
        payload: dict[str, Any] | None = None,
        rate: float | None = None,
        concurrency: int = 8,
        duration: float = 10.0,
        request_timeout: float = 10.0,
        max_p99_ms: float | None = None,
        max_error_rate: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value in (
            ("duration", duration),
            ("request_timeout", request_timeout),
            ("rate", rate),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"task {self.task_id!r}: {name} must be positive, got {value}")
        if max_error_rate is not None and not 0 <= max_error_rate <= 1:
            raise ValueError(
                f"task {self.task_id!r}: max_error_rate must be within 0..1, got {max_error_rate}"
            )
        self.endpoint = endpoint
        self.path = path
        self.method = method.upper()
        self.payload = payload
        self.rate = None if rate is None else float(rate)
        self.concurrency = concurrency
        self.duration = float(duration)
        self.request_timeout = float(request_timeout)
        self.max_p99_ms = None if max_p99_ms is None else float(max_p99_ms)
        self.max_error_rate = None if max_error_rate is None else float(max_error_rate)

    def execute(self, context: Context) -> LoadTestResult:
        """Run the load and check the SLOs; return the result."""
        from mlwf_operators.loadgen._run import run_load

        url = self.endpoint.rstrip("/") + "/" + self.path.lstrip("/")
        body = None if self.payload is None else json.dumps(self.payload).encode()
        mode = (
            f"open loop at {self.rate:g} req/s"
            if self.rate
            else f"closed loop, {self.concurrency} connections"
        )
        self.log.info("load-testing %s %s for %g s (%s)", self.method, url, self.duration, mode)
        result = run_load(
            url,
            method=self.method,
            body=body,
            duration=self.duration,
            rate=self.rate,
            concurrency=self.concurrency,
            timeout=self.request_timeout,
        )
        self.log.info("load test result: %s", result)
        misses = check_slos(result, self.max_p99_ms, self.max_error_rate)
        if misses:
            raise SLOMissedError(
                f"load test of {self.method} {url} missed its SLOs: " + "; ".join(misses)
            )
        return result
