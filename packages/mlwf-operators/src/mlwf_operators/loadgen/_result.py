"""What a load run returns: a module of its own, so that declaring it costs a DAG file nothing.

``LoadTestOperator`` declares ``LoadTestResult`` as its XCom type when its module is imported,
that is each time a DAG file using it is parsed; the load generator itself (asyncio client, the
run loops) is imported only when a load test runs.
"""

from __future__ import annotations

from typing import TypedDict


class LoadTestResult(TypedDict):
    """The numbers of one load run."""

    requests: int
    errors: int
    error_rate: float
    duration_s: float
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
