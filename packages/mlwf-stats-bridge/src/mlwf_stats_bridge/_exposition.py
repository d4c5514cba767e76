"""The Prometheus exposition of every process's metrics (multiprocess mode) or of this process's.

In multiprocess mode every process writes its own files (``counter_<pid>.db``, ...). Airflow 3
runs each task in a short-lived process, so a long-running instance would accumulate one set of
files per task ever run and every scrape would read them all. Scrapes therefore *compact*: the
counter and histogram files of dead processes are folded into one archive file per type
(``counter_archive.db``, ``histogram_archive.db``) and removed, so the directory holds the live
processes plus two archives, and totals never go backwards.

Compaction and reading are serialized by a lock file in the directory (exclusive for compaction,
shared for reading), so no scrape ever sees a dead process's values twice or not at all. The
archive is replaced atomically; the one window left is a crash between that replacement and the
removal of the folded files, which would count those files twice once (documented).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.mmap_dict import MmapedDict

from mlwf_stats_bridge._client import _CLIENTS, multiprocess_dir

_PID_FILE = re.compile(r"_(\d+)\.db$")
_COMPACTED_TYPES = ("counter", "histogram")
LOCK_FILE = ".mlwf-stats-bridge.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(
    directory: str | os.PathLike[str], *, exclusive: bool, wait: bool = True
) -> Iterator[bool]:
    """Hold the directory's lock (shared or exclusive); yield False if ``wait`` is off and it is busy."""
    with open(Path(directory) / LOCK_FILE, "a+b") as handle:
        flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(handle, flags | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _dead_files(directory: Path, kind: str) -> list[Path]:
    me = os.getpid()
    dead = []
    for file in directory.glob(f"{kind}_*.db"):
        found = _PID_FILE.search(file.name)
        if found and int(found.group(1)) != me and not _alive(int(found.group(1))):
            dead.append(file)
    return sorted(dead)


def compact_dead_processes(path: str | os.PathLike[str]) -> int:
    """Fold dead processes' counter and histogram files into the archives; return how many files.

    Skips (returns 0) when another process is compacting the same directory right now.
    """
    directory = Path(path)
    folded = 0
    with _locked(directory, exclusive=True, wait=False) as acquired:
        if not acquired:
            return 0
        for kind in _COMPACTED_TYPES:
            dead = _dead_files(directory, kind)
            if not dead:
                continue
            archive = directory / f"{kind}_archive.db"
            totals: dict[str, float] = {}
            for file in ([archive] if archive.exists() else []) + dead:
                values = MmapedDict.read_all_values_from_file(str(file))  # type: ignore[no-untyped-call]
                for key, value, _timestamp, _position in values:
                    totals[key] = totals.get(key, 0.0) + value
            staging = directory / f".{kind}_archive.db.tmp"  # not *.db: never read as metrics
            staging.unlink(missing_ok=True)
            merged = MmapedDict(str(staging))  # type: ignore[no-untyped-call]
            try:
                for key, value in totals.items():
                    merged.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
            finally:
                merged.close()  # type: ignore[no-untyped-call]
            os.replace(staging, archive)
            for file in dead:
                file.unlink()
            folded += len(dead)
    return folded


def remove_dead_processes(path: str | os.PathLike[str]) -> list[int]:
    """Drop the live-mode gauge files of processes that no longer exist; return their pids.

    Counters and histograms of dead processes are folded into the archives instead
    (:func:`compact_dead_processes`): their counts must not go backwards.
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
        compact_dead_processes(directory)
        remove_dead_processes(directory)
        multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
        with _locked(directory, exclusive=False):
            return generate_latest(registry)
    return b"".join(generate_latest(client.registry) for client in list(_CLIENTS))
