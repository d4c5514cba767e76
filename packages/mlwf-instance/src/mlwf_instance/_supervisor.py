"""Start, watch and stop process groups, leaving no orphans.

Every supervised process runs in its own session (hence its own process group) so that a
terminal's Ctrl-C reaches only the supervisor, which then stops the children in order. Airflow
components fork helpers (LocalExecutor workers, DAG file processors, task runners) and some of
them outlive a SIGTERM of their parent, so stopping works on whole process trees collected with
psutil *before* any signal is sent (a reparented orphan can no longer be found from its parent):
:mod:`mlwf_operators.processes` does that, for every mlwf package.

Nothing may outlive the supervisor either, however it ends (SIGKILL included), so two more
mechanisms work without it: every process starts through :mod:`mlwf_instance._child`, which has
the kernel kill it when the supervisor dies and arms what it forks the same way against its own
parent, and a watchdog process (:mod:`mlwf_instance._watchdog`) kills what is left in the
supervised sessions once the supervisor's end of a pipe closes. Processes are started from one
long-lived thread because the kernel's parent-death signal fires when the *thread* that started a
process exits. Children get umask 077: the home holds secrets and other users must not read them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil
from mlwf_operators.processes import kill_trees, process_tree, tail_file, terminate_trees

from mlwf_instance._errors import ComponentDiedError
from mlwf_instance._pidfile import ProcessRecord

#: Seconds between checks while waiting for processes.
POLL_INTERVAL = 0.2
#: Mode mask of every supervised process: files it creates are readable by the owner only.
CHILD_UMASK = 0o077
#: Mode of the log files of supervised processes.
LOG_MODE = 0o600
#: Environment variable every child gets: its value marks one supervisor (see _watchdog).
MARKER_ENV = "MLWF_SUPERVISOR"

_spawner_lock = threading.Lock()
_spawner: ThreadPoolExecutor | None = None


def _spawn_thread() -> ThreadPoolExecutor:
    """Return the one thread that starts every supervised process (it lives as long as we do)."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlwf-spawner")
        return _spawner


def launcher_argv(argv: Sequence[str]) -> list[str]:
    """Return ``argv`` run through :mod:`mlwf_instance._child` (dies with this process)."""
    return [sys.executable, "-m", "mlwf_instance._child", str(os.getpid()), *argv]


def open_private_log(path: Path) -> IO[bytes]:
    """Open ``path`` for appending, created (or narrowed to) mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_MODE)
    os.fchmod(fd, LOG_MODE)
    return os.fdopen(fd, "ab")


class StopRequested(Exception):
    """Raised out of a wait when the supervisor's stop event is set (SIGINT/SIGTERM)."""


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


class Supervisor:
    """Runs named child processes, each in its own process group, logging to files."""

    def __init__(
        self, stop_event: threading.Event | None = None, watchdog_log: Path | None = None
    ) -> None:
        """Create a supervisor; setting ``stop_event`` interrupts its waits with StopRequested.

        ``watchdog_log`` receives what the watchdog reports (what it had to kill).
        """
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.processes: list[SupervisedProcess] = []
        self._lock = threading.Lock()
        self._watchdog_log = watchdog_log
        #: Set as $MLWF_SUPERVISOR in every child: the watchdog finds programs tasks ran by it.
        self.marker = f"{os.getpid()}-{secrets.token_hex(8)}"
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watchdog_pipe: IO[bytes] | None = None

    def _watch(self, child: subprocess.Popen[bytes]) -> None:
        """Tell the watchdog (started on first use) about a new session leader."""
        if self._watchdog is None or self._watchdog.poll() is not None:
            read_end, write_end = os.pipe()  # both close-on-exec: no other child inherits them
            log = (
                open_private_log(self._watchdog_log)
                if self._watchdog_log is not None
                else open(os.devnull, "wb")  # noqa: SIM115 (closed right below)
            )
            with log:
                self._watchdog = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "mlwf_instance._watchdog",
                        str(os.getpid()),
                        self.marker,
                    ],
                    stdin=read_end,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C or a closed terminal must not reach it
                )
            os.close(read_end)
            self._watchdog_pipe = os.fdopen(write_end, "wb", buffering=0)
        assert self._watchdog_pipe is not None
        try:
            started = psutil.Process(child.pid).create_time()
        except psutil.Error:
            return  # already gone: nothing to watch
        with contextlib.suppress(OSError):
            self._watchdog_pipe.write(f"{child.pid} {started}\n".encode())

    def close_watchdog(self, timeout: float = 10.0) -> None:
        """Close the watchdog's pipe: it kills what is left in the sessions, then exits."""
        pipe, self._watchdog_pipe = self._watchdog_pipe, None
        if pipe is not None:
            pipe.close()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                watchdog.wait(timeout=timeout)

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> SupervisedProcess:
        """Start ``argv`` in a new session with stdout and stderr appended to ``log_path``.

        The process runs through :mod:`mlwf_instance._child` (it and what it forks die with this
        process), with umask 077, and the log file is private (mode 0600).
        """
        log: IO[bytes]
        with open_private_log(log_path) as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== mlwf: {stamp} starting {' '.join(argv)}\n".encode())
            log.flush()
            popen = (
                _spawn_thread()
                .submit(
                    subprocess.Popen,
                    launcher_argv(argv),
                    env={**env, MARKER_ENV: self.marker},
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    umask=CHILD_UMASK,
                )
                .result()
            )
        self._watch(popen)
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
        """SIGKILL ``child``'s whole tree (see :func:`mlwf_operators.processes.kill_trees`), reap it and stop tracking it."""
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
                    out.append(ProcessRecord(child.pid, child.process.create_time(), child.name))
        return out

    def all_pids(self) -> set[int]:
        """Return the pids of every live supervised process and its descendants."""
        return {p.pid for child in self.processes for p in process_tree(child.pid)}

    def stop(self, grace: float = 10.0) -> list[psutil.Process]:
        """Stop every supervised process tree (see :func:`mlwf_operators.processes.terminate_trees`); return those killed."""
        with self._lock:
            children, self.processes = self.processes, []
        killed = terminate_trees(
            [c.process for c in children if c.process is not None], grace=grace
        )
        for child in children:
            # Reap our direct children so no zombie outlives the supervisor.
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=5)
        # Whatever left the trees but stayed in a supervised session goes too.
        self.close_watchdog()
        return killed
