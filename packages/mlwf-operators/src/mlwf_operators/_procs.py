"""Kill whole process trees: a process group plus any descendant that left it."""

from __future__ import annotations

import contextlib
import os
import signal

import psutil


def kill_tree(pid: int, *, grace: float = 5.0) -> None:
    """Stop ``pid``, its process group and its descendants: SIGTERM, then SIGKILL after ``grace`` s.

    Children of ours are reaped by ``psutil.wait_procs``; a ``grace`` of 0 kills at once.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if sig == signal.SIGTERM and grace <= 0:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        _, alive = psutil.wait_procs(procs, timeout=grace if sig == signal.SIGTERM else 5.0)
        procs = alive
        if not procs:
            return
