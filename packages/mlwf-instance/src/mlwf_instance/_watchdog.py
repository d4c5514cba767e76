"""Watchdog of a supervisor: when the supervisor is gone, nothing it started may stay.

``python -m mlwf_instance._watchdog SUPERVISOR_PID [MARKER]`` runs in a session of its own with the read end of a pipe
as stdin; the supervisor holds the only write end and writes one line ``<pid> <start time>`` per
process it spawns (each one leads a new session). When stdin reaches end of file, the supervisor
has exited or died (SIGKILL included: the kernel closes its descriptors), and the watchdog
SIGKILLs every process still in one of those sessions (started after its leader, so a reused pid
is never taken for a member), every descendant of a leader it saw meanwhile (it looks every
``INTERVAL`` seconds: a process that left the session, such as BashOperator's shell, is found
that way once it has lived that long), every process whose environment has ``MARKER_ENV`` set
to ``MARKER`` (programs started by tasks inherit it, however young; Python processes renamed
with setproctitle no longer show it, but those are found the other ways), and their
descendants; then it exits.

This is the safety net behind :mod:`mlwf_instance._child`: it reaches processes that are not
armed against their parent (``exec``-ed without a Python fork hook, e.g. a ``subprocess``
without ``preexec_fn``). psutil checks a process's start time before signalling it, so a pid
reused since it was seen is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

import psutil
from mlwf_operators.processes import is_alive

from mlwf_instance._supervisor import MARKER_ENV

#: Sweeps after end of file: a process may fork while the first sweep runs.
SWEEPS = 3
#: Seconds to leave the kernel's parent-death signals (see mlwf_instance._child) to act first.
SETTLE = 0.5
#: Seconds between two looks at the leaders' process trees while the supervisor lives.
INTERVAL = 1.0


def _members(
    leaders: dict[int, float],
    seen: dict[int, psutil.Process] | None = None,
    marker: str | None = None,
) -> list[psutil.Process]:
    """Return the live processes of the leaders' sessions, those ``seen``, those carrying
    ``marker`` in their environment, and their descendants."""
    found: dict[int, psutil.Process] = {}
    for proc in (seen or {}).values():
        if proc.is_running():  # same pid *and* start time
            found[proc.pid] = proc
            with contextlib.suppress(psutil.Error):
                for child in proc.children(recursive=True):
                    found.setdefault(child.pid, child)
    me = os.getpid()
    for proc in psutil.process_iter(["create_time"]):
        if proc.pid == me:
            continue
        with contextlib.suppress(psutil.Error, OSError):
            sid = os.getsid(proc.pid)
            started = leaders.get(sid)
            in_session = started is not None and proc.info["create_time"] >= started - 0.01
            marked = marker is not None and proc.environ().get(MARKER_ENV) == marker
            if not (in_session or marked):
                continue  # neither in a supervised session (a reused session id) nor marked
            found[proc.pid] = proc
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
    return [proc for proc in found.values() if is_alive(proc)]


def look(leaders: dict[int, float], seen: dict[int, psutil.Process]) -> None:
    """Add every live descendant of the leaders to ``seen`` (a leader whose pid was reused is skipped)."""
    children: dict[int, list[psutil.Process]] = {}
    procs: dict[int, psutil.Process] = {}
    # One pass over the process table (not one per leader): this runs every INTERVAL seconds.
    for proc in psutil.process_iter(["ppid", "create_time"]):
        procs[proc.pid] = proc
        children.setdefault(proc.info["ppid"], []).append(proc)
    gone = []
    for pid, started in leaders.items():
        leader = procs.get(pid)
        if leader is None or abs((leader.info["create_time"] or 0) - started) > 0.01:
            gone.append(pid)
            continue
        stack = list(children.get(pid, []))
        while stack:
            proc = stack.pop()
            if proc.pid not in seen:
                seen[proc.pid] = proc
            stack.extend(children.get(proc.pid, []))
    if gone:
        _forget_empty_sessions(leaders, gone, procs)


def _forget_empty_sessions(
    leaders: dict[int, float], gone: list[int], procs: dict[int, psutil.Process]
) -> None:
    """Forget dead leaders whose session has no member left.

    Linux does not reuse a pid while a process still has it as its session id, so a leader is
    dropped only once nothing is left of its session: a later, unrelated session leader given
    the same pid (a shell, another instance's component) is then never swept as ours.
    """
    sids: set[int] = set()
    for pid in procs:
        with contextlib.suppress(OSError):
            sids.add(os.getsid(pid))
    for pid in gone:
        if pid not in sids:
            del leaders[pid]


def sweep(
    leaders: dict[int, float],
    seen: dict[int, psutil.Process] | None = None,
    marker: str | None = None,
) -> int:
    """SIGKILL every process of the leaders' sessions, ``seen`` or marked; return how many."""
    total = 0
    time.sleep(SETTLE)
    for _ in range(SWEEPS):
        members = _members(leaders, seen, marker)
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
    seen: dict[int, psutil.Process] = {}
    pending = b""
    while True:
        readable, _, _ = select.select([0], [], [], INTERVAL)
        if readable:
            chunk = os.read(0, 4096)
            if not chunk:
                break  # end of file: the supervisor is gone
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                pid, _, started = line.decode().strip().partition(" ")
                with contextlib.suppress(ValueError):
                    leaders[int(pid)] = float(started)
        look(leaders, seen)
        # Forget the dead: a long-lived instance must not accumulate them.
        seen = {pid: proc for pid, proc in seen.items() if proc.is_running()}
    supervisor = sys.argv[1] if len(sys.argv) > 1 else "?"
    marker = sys.argv[2] if len(sys.argv) > 2 else None
    began = time.monotonic()
    killed = sweep(leaders, seen, marker)
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
