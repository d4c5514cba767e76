"""Start, watch and stop process groups, leaving no orphans.

Every supervised process runs in its own session (hence its own process group) so that a
terminal's Ctrl-C reaches only the supervisor, which then stops the children in order. Airflow
components fork helpers (LocalExecutor workers, DAG file processors, task runners) and some of
them outlive a SIGTERM of their parent, so stopping works on whole process trees collected with
psutil *before* any signal is sent (a reparented orphan can no longer be found from its parent).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from mlwf_instance._errors import ComponentDiedError
from mlwf_instance._pidfile import ProcessRecord

#: Seconds between checks while waiting for processes.
POLL_INTERVAL = 0.2


class StopRequested(Exception):
    """Raised out of a wait when the supervisor's stop event is set (SIGINT/SIGTERM)."""


def tail_file(path: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of a text file ("" if it does not exist)."""
    try:
        with open(path, errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip("\n")
    except FileNotFoundError:
        return ""


@dataclass
class SupervisedProcess:
    """One child process: its name, command, log file and ``Popen`` handle."""

    name: str
    argv: Sequence[str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    process: psutil.Process | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """Process id (also the process group id: each child leads its own group)."""
        return self.popen.pid

    def poll(self) -> int | None:
        """Return the exit code, or None while running."""
        return self.popen.poll()

    def died(self) -> ComponentDiedError:
        """Return the error describing this process's exit, with the tail of its log."""
        return ComponentDiedError(self.name, self.poll(), self.log_path, tail_file(self.log_path))


def process_tree(pid: int) -> list[psutil.Process]:
    """Return the process ``pid`` and all its descendants that are alive now."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def collect_group(leader: psutil.Process) -> list[psutil.Process]:
    """Return ``leader``, its descendants and every process still in its process group.

    Group members are found even when the leader has exited and they were reparented; only
    processes started after the leader count, so a reused pid is never mistaken for a member.
    """
    found: dict[int, psutil.Process] = {}
    if _alive(leader):
        found[leader.pid] = leader
        for proc in _descendants(leader):
            found.setdefault(proc.pid, proc)
    try:
        since = leader.create_time()
    except psutil.Error:
        return list(found.values())
    for proc in psutil.process_iter():
        if proc.pid in found or _pgid(proc) != leader.pid:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.create_time() >= since:
                found[proc.pid] = proc
                for descendant in _descendants(proc):
                    found.setdefault(descendant.pid, descendant)
    return list(found.values())


def terminate_trees(
    leaders: Iterable[psutil.Process],
    grace: float = 10.0,
    extra: Iterable[psutil.Process] = (),
) -> list[psutil.Process]:
    """Stop process groups and every descendant; return the processes that needed SIGKILL.

    Collects each group leader's tree and group (see :func:`collect_group`) before any signal,
    sends SIGTERM to each live process group, waits up to ``grace`` seconds, then SIGKILLs every
    collected process still alive plus anything it forked meanwhile. ``extra`` adds processes
    known from elsewhere (e.g. recorded by a dead predecessor); they are signalled one by one.
    """
    leaders = list(leaders)
    collected: dict[int, psutil.Process] = {p.pid: p for p in extra if _alive(p)}
    for leader in leaders:
        for proc in collect_group(leader):
            collected.setdefault(proc.pid, proc)
    groups = {leader.pid for leader in leaders if _alive(leader)}
    for group in groups:
        _killpg(group, signal.SIGTERM)
    for proc in collected.values():
        if _pgid(proc) not in groups:
            _signal(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(list(collected.values()), timeout=grace)
    killed: dict[int, psutil.Process] = {}
    for proc in alive:
        for descendant in _descendants(proc):
            killed.setdefault(descendant.pid, descendant)
        killed.setdefault(proc.pid, proc)
    for proc in killed.values():
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(list(killed.values()), timeout=5)
    return list(killed.values())


def kill_trees(leaders: Iterable[psutil.Process], timeout: float = 5.0) -> list[psutil.Process]:
    """SIGKILL process groups and every descendant at once, as a crash would; return the killed.

    No process gets a chance to clean up (no SIGTERM first). Each leader's tree and group are
    collected before any signal (see :func:`collect_group`); the groups are then signalled as a
    whole, which also catches a member forked meanwhile. Waits up to ``timeout`` s for them to go.
    """
    leaders = list(leaders)
    collected: dict[int, psutil.Process] = {}
    for leader in leaders:
        for proc in collect_group(leader):
            collected.setdefault(proc.pid, proc)
    for leader in leaders:
        if _alive(leader):
            _killpg(leader.pid, signal.SIGKILL)
    for proc in collected.values():
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(list(collected.values()), timeout=timeout)
    return list(collected.values())


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except ProcessLookupError:
        return None


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return list(proc.children(recursive=True))
    except psutil.Error:
        return []


def _killpg(group: int, sig: signal.Signals) -> None:
    # Only called for groups whose leader (our child) is alive, so the group id is ours.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def _signal(proc: psutil.Process, sig: signal.Signals) -> None:
    # psutil checks the process's start time first, so a reused pid is never signalled.
    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)


class Supervisor:
    """Runs named child processes, each in its own process group, logging to files."""

    def __init__(self, stop_event: threading.Event | None = None) -> None:
        """Create a supervisor; setting ``stop_event`` interrupts its waits with StopRequested."""
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.processes: list[SupervisedProcess] = []
        self._lock = threading.Lock()

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> SupervisedProcess:
        """Start ``argv`` in a new session with stdout and stderr appended to ``log_path``."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log: IO[bytes]
        with open(log_path, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== mlwf: {stamp} starting {' '.join(argv)}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            proc: psutil.Process | None = psutil.Process(popen.pid)
        except psutil.NoSuchProcess:
            proc = None
        child = SupervisedProcess(name, tuple(argv), log_path, popen, proc)
        with self._lock:
            self.processes.append(child)
        return child

    def wait(self, child: SupervisedProcess, timeout: float | None = None) -> int:
        """Wait for ``child`` to exit and return its code; honours the stop event.

        Raises StopRequested when a stop was requested and TimeoutError after ``timeout`` s.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := child.poll()) is None:
            if self.stop_event.is_set():
                raise StopRequested
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{child.name} did not finish within {timeout} s")
            self.stop_event.wait(POLL_INTERVAL)
        return code

    def check(self) -> None:
        """Raise ComponentDiedError for the first supervised process that has exited."""
        for child in list(self.processes):
            if child.poll() is not None:
                raise child.died()

    def find(self, name: str) -> SupervisedProcess | None:
        """Return the supervised process called ``name`` (the latest one), or None."""
        with self._lock:
            return next((c for c in reversed(self.processes) if c.name == name), None)

    def kill(self, child: SupervisedProcess, timeout: float = 5.0) -> list[psutil.Process]:
        """SIGKILL ``child``'s whole tree (see :func:`kill_trees`), reap it and stop tracking it."""
        self.forget(child)
        killed = kill_trees([child.process] if child.process is not None else [], timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.popen.wait(timeout=timeout)  # our direct child: no zombie left behind
        return killed

    def forget(self, child: SupervisedProcess) -> None:
        """Stop tracking a process that finished as expected (e.g. a one-shot command)."""
        with self._lock:
            if child in self.processes:
                self.processes.remove(child)

    def sleep(self, seconds: float) -> None:
        """Sleep, raising StopRequested if a stop is requested meanwhile."""
        if self.stop_event.wait(seconds):
            raise StopRequested

    def records(self) -> list[ProcessRecord]:
        """Return pid + start time of every supervised process (for the pid file)."""
        out = []
        for child in self.processes:
            if child.process is not None:
                with contextlib.suppress(psutil.Error):
                    out.append(ProcessRecord(child.pid, child.process.create_time()))
        return out

    def all_pids(self) -> set[int]:
        """Return the pids of every live supervised process and its descendants."""
        return {p.pid for child in self.processes for p in process_tree(child.pid)}

    def stop(self, grace: float = 10.0) -> list[psutil.Process]:
        """Stop every supervised process tree (see :func:`terminate_trees`); return those killed."""
        with self._lock:
            children, self.processes = self.processes, []
        killed = terminate_trees(
            [c.process for c in children if c.process is not None], grace=grace
        )
        for child in children:
            # Reap our direct children so no zombie outlives the supervisor.
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=5)
        return killed
