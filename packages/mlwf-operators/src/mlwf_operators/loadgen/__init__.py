"""A load generator for HTTP services: open-loop at a fixed rate or closed-loop at fixed concurrency."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlwf_operators.loadgen._result import LoadTestResult as LoadTestResult
    from mlwf_operators.loadgen._run import (
        LoadGenError as LoadGenError,
        ServiceUnreachableError as ServiceUnreachableError,
        run_load as run_load,
    )

# Each public name -> its module, imported on first use: ``LoadTestOperator``'s module imports
# ``LoadTestResult`` from here each time a DAG file using it is parsed, and needs none of the
# generator (its asyncio client and run loops) until a load test runs.
_LAZY = {
    "LoadTestResult": "mlwf_operators.loadgen._result",
    "run_load": "mlwf_operators.loadgen._run",
    "LoadGenError": "mlwf_operators.loadgen._run",
    "ServiceUnreachableError": "mlwf_operators.loadgen._run",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlwf_operators.loadgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["run_load", "LoadTestResult", "LoadGenError", "ServiceUnreachableError"]
