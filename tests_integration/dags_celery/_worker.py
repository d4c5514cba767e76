"""Name of the Celery worker running the current task (``worker-N``), for side-effect logs."""

from __future__ import annotations

import os
import re

_NAME = re.compile(r"\b(worker-\d+)@")


def worker_name() -> str:
    """Return ``MLWF_WORKER_NAME``, else the ``worker-N`` of an ancestor's Celery hostname."""
    if os.environ.get("MLWF_WORKER_NAME"):
        return os.environ["MLWF_WORKER_NAME"]
    import psutil

    for proc in psutil.Process().parents():
        try:
            found = _NAME.search(" ".join(proc.cmdline()))
        except psutil.Error:
            continue
        if found:
            return found.group(1)
    return "?"
