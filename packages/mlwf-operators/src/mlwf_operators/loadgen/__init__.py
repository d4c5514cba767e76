"""A load generator for HTTP services: open-loop at a fixed rate or closed-loop at fixed concurrency."""

from __future__ import annotations

from mlwf_operators.loadgen._run import (
    LoadGenError,
    LoadTestResult,
    ServiceUnreachableError,
    run_load,
)

__all__ = ["run_load", "LoadTestResult", "LoadGenError", "ServiceUnreachableError"]
