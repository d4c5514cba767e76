"""Watchdog of a supervisor: when the supervisor is gone, nothing it started may stay.

``python -m mlwf_instance._watchdog SUPERVISOR_PID`` runs in a session of its own with the read end of a pipe
as stdin; the supervisor holds the only write end and writes one line ``<pid> <start time>`` per
process it spawns (each one leads a new session). When stdin reaches end of file, the supervisor
has exited or died (SIGKILL included: the kernel closes its descriptors), and the watchdog
SIGKILLs every process still in one of those sessions (started after its leader, so a reused pid
is never taken for a member) and their descendants, then exits.

This is the safety net behind :mod:`mlwf_instance._child`: it also reaches processes that are
not armed against their parent (``exec``-ed without a Python fork hook, e.g. multiprocessing's
``spawn`` workers) as long as they stayed in their component's session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

import psutil

#: Sweeps after end of file: a process may fork while the first sweep runs.
SWEEPS = 3
#: Seconds to leave the kernel's parent-death signals (see mlwf_instance._child) to act first.
SETTLE = 0.5


def _members(leaders: dict[int, float]) -> list[psutil.Process]:
    """Return the live processes of the leaders' sessions (and their descendants)."""
    found: dict[int, psutil.Process] = {}
    me = os.getpid()
    for proc in psutil.process_iter(["create_time"]):
        if proc.pid == me:
            continue
        with contextlib.suppress(psutil.Error, OSError):
            sid = os.getsid(proc.pid)
            started = leaders.get(sid)
            if started is None or proc.info["create_time"] < started - 0.01:
                continue  # not in a supervised session, or a reused session id
            found[proc.pid] = proc
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
    return [proc for proc in found.values() if _alive(proc)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE  # a zombie is dead, only not reaped yet
    except psutil.Error:
        return False


def sweep(leaders: dict[int, float]) -> int:
    """SIGKILL every process of the leaders' sessions; return how many were signalled."""
    total = 0
    time.sleep(SETTLE)
    for _ in range(SWEEPS):
        members = _members(leaders)
        if not members:
            break
        for proc in members:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        total += len(members)
        psutil.wait_procs(members, timeout=2)
    return total


def main() -> int:
    """Read leaders from stdin until end of file, then sweep their sessions."""
    # Ctrl-C and a closed terminal reach the supervisor, which then closes the pipe: the
    # watchdog acts on end of file only.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    leaders: dict[int, float] = {}
    for line in sys.stdin:
        pid, _, started = line.strip().partition(" ")
        with contextlib.suppress(ValueError):
            leaders[int(pid)] = float(started)
    supervisor = sys.argv[1] if len(sys.argv) > 1 else "?"
    began = time.monotonic()
    killed = sweep(leaders)
    if killed:
        print(
            f"mlwf watchdog: supervisor {supervisor} is gone; killed {killed} leftover "
            f"process(es) in {time.monotonic() - began:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
