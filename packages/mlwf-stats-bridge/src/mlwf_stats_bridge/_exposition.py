"""The Prometheus exposition of every process's metrics (multiprocess mode) or of this process's."""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from mlwf_stats_bridge._client import _CLIENTS, multiprocess_dir

_PID_FILE = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_processes(path: str | os.PathLike[str]) -> list[int]:
    """Drop the live-mode gauge files of processes that no longer exist; return their pids.

    Counters and histograms of dead processes stay: their counts must not go backwards.
    """
    dead = sorted(
        {
            int(found.group(1))
            for file in Path(path).glob("gauge_live*_*.db")
            if (found := _PID_FILE.search(file.name)) and not _alive(int(found.group(1)))
        }
    )
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    return dead


def exposition(path: str | os.PathLike[str] | None = None) -> bytes:
    """Return the text exposition: all processes' files when in multiprocess mode (or ``path``),
    else the registries of this process's clients."""
    directory = str(path) if path is not None else multiprocess_dir()
    registry = CollectorRegistry(auto_describe=True)
    if directory:
        if not Path(directory).is_dir():
            raise FileNotFoundError(f"metrics directory {directory} does not exist")
        remove_dead_processes(directory)
        multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return b"".join(generate_latest(client.registry) for client in list(_CLIENTS))
