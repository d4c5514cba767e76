"""Prove that a test left no process behind."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable

import psutil


def process_tree(pid: int) -> list[psutil.Process]:
    """Deprecated: use :func:`mlwf_operators.processes.process_tree` (the one implementation)."""
    warnings.warn(
        "mlwf_testsupport.process_tree is deprecated; use mlwf_operators.processes.process_tree",
        DeprecationWarning,
        stacklevel=2,
    )
    # Imported here: testsupport serves every package's tests, most without mlwf-operators.
    from mlwf_operators.processes import process_tree as _process_tree

    return _process_tree(pid)


def _mentions(proc: psutil.Process, marker: str) -> bool:
    try:
        if any(marker in part for part in proc.cmdline()):
            return True
        # Unrenamed processes may carry the marker only in their environment (AIRFLOW_HOME=...).
        return any(marker in value for value in proc.environ().values())
    except psutil.Error:
        return False


def leftover_processes(
    marker: str | None = None, among: Iterable[psutil.Process] = ()
) -> list[psutil.Process]:
    """Return live processes whose cmdline or environment contains ``marker``, plus live ``among``.

    Zombies are ignored; so is the calling process and its ancestors. Airflow renames most of
    its processes (setproctitle: ``airflow worker -- LocalExecutor``, ``airflow serve-logs``) and
    that also overwrites what ``/proc/<pid>/environ`` shows, so a marker cannot find them: pass
    ``among``, a snapshot of the process tree (see :func:`mlwf_operators.processes.process_tree`)
    taken while it ran.
    """
    me = psutil.Process()
    exclude = {me.pid, *(p.pid for p in me.parents())}
    found: dict[int, psutil.Process] = {}
    candidates = list(among)
    if marker is not None:
        candidates.extend(p for p in psutil.process_iter() if _mentions(p, marker))
    for proc in candidates:
        try:
            if (
                proc.pid not in exclude
                and proc.is_running()
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found[proc.pid] = proc
        except psutil.Error:
            continue
    return list(found.values())


def assert_no_leftover_processes(
    marker: str | None = None, among: Iterable[psutil.Process] = (), timeout: float = 5.0
) -> None:
    """Fail unless, within ``timeout`` s, no process matches (see :func:`leftover_processes`).

    On failure, the leftovers are listed and then killed so one bad test cannot spoil the next.
    """
    among = list(among)
    deadline = time.monotonic() + timeout
    while (left := leftover_processes(marker, among)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not left:
        return
    described = []
    for proc in left:
        try:
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:200]}")
            proc.kill()
        except psutil.Error:
            continue
    raise AssertionError(
        f"{len(left)} process(es) left behind (marker {marker!r}), now killed:\n"
        + "\n".join(described)
    )
