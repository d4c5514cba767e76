"""The home's pid file: one ``mlwf up`` per home, robust against stale files.

The file is held under an exclusive lock (``filelock``: ``flock`` on Unix) for as long as its owner
lives, so a file left by a killed owner is simply not locked: it is stale and is taken over. The
file also records the supervised processes (pid + start time) so that a successor can reap what
a killed owner left. Writing into the held lock file is filelock's documented use
(``on_acquired`` hands over the descriptor). A claim that races its previous owner's release
(the owner unlinks the file between our open and our lock, so filelock declines the dead inode)
is tried again, briefly, for as long as no live owner holds the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from mlwf_instance._errors import InstanceAlreadyRunningError

#: Two start times of one process may differ by this much: psutil derives them from the boot
#: time, which moves in whole seconds when the wall clock is stepped (NTP, resume). A reused
#: pid starts long after (the pid space must wrap around first).
START_TIME_TOLERANCE = 2.0


def same_start(recorded: float, actual: float) -> bool:
    """Whether two ``create_time`` readings name the same process start."""
    return abs(recorded - actual) <= START_TIME_TOLERANCE


@dataclass(frozen=True)
class ProcessRecord:
    """A process as recorded in the pid file: its pid and start time (guards against pid reuse)."""

    pid: int
    create_time: float
    #: The component's name (``scheduler``, ``worker-1``…); "" when not known.
    name: str = ""


class PidFile:
    """An exclusive, self-releasing claim on an instance home."""

    def __init__(self, path: Path, home: Path) -> None:
        """Prepare a claim on ``path`` for the home ``home`` (named in error messages)."""
        self.path = path
        self.home = home
        self._lock: FileLock | None = None
        self._fd: int | None = None
        #: Processes recorded by a previous owner that died without cleaning up.
        self.stale_processes: list[ProcessRecord] = []

    @property
    def held(self) -> bool:
        """Whether this object currently holds the claim."""
        return self._fd is not None

    def acquire(self) -> None:
        """Claim the home or raise :class:`InstanceAlreadyRunningError` if a live owner holds it."""
        if self._fd is not None:
            return
        descriptors: list[int] = []
        deadline = time.monotonic() + CLAIM_RETRY_S
        while True:
            # Private like everything in the home (mode 0600); held open for the claim's lifetime.
            lock = _file_lock(self.path, on_acquired=descriptors.append)
            try:
                lock.acquire(blocking=False)
                break
            except Timeout:
                owner = read_owner(self.path)
                if owner.running or time.monotonic() > deadline:
                    raise InstanceAlreadyRunningError(self.home, owner.pid) from None
                time.sleep(0.02)  # the previous owner was releasing: its file is gone or free
        self._lock, self._fd = lock, descriptors[-1]
        self.stale_processes = _records(_read(self._fd))
        self.record([])

    def record(self, processes: list[ProcessRecord]) -> None:
        """Write our pid and the supervised ``processes`` into the file."""
        if self._fd is None:
            raise RuntimeError(f"pid file {self.path} is not held")
        content = {
            "pid": os.getpid(),
            "create_time": _own_create_time(),
            "processes": [
                {"pid": p.pid, "create_time": p.create_time, "name": p.name} for p in processes
            ],
        }
        # Overwrite in place, then cut what is left of a longer old content: the file is never
        # empty while held (a truncate-then-write would let `status` read "" mid-update).
        # A reader can still see new-then-old bytes; it retries (see read_owner).
        data = json.dumps(content) + "\n"
        fd = self._fd
        os.pwrite(fd, data.encode(), 0)
        os.ftruncate(fd, len(data.encode()))

    def release(self) -> None:
        """Remove the file and give up the claim (idempotent)."""
        if self._lock is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._lock.release()  # unlocks and closes the descriptor
        self._lock = self._fd = None


def _file_lock(path: Path, on_acquired: Callable[[int], None] | None = None) -> FileLock:
    """A filelock on ``path``: kernel-released (no soft fallback), shared by the process's threads."""
    return FileLock(
        path, mode=0o600, thread_local=False, fallback_to_soft=False, on_acquired=on_acquired
    )


def _own_create_time() -> float:
    import psutil  # a declared dependency; only the writer needs it

    return float(psutil.Process().create_time())


def _read(fd: int) -> dict[str, object]:
    """Return the JSON content of a pid file, or an empty dict when it is empty or garbled."""
    data = b""
    while chunk := os.pread(fd, 65536, len(data)):
        data += chunk
    try:
        content = json.loads(data or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return content if isinstance(content, dict) else {}


def _records(content: dict[str, object]) -> list[ProcessRecord]:
    recorded = content.get("processes")
    return [
        ProcessRecord(int(p["pid"]), float(p["create_time"]), str(p.get("name", "")))
        for p in (recorded if isinstance(recorded, list) else [])
        if isinstance(p, dict) and "pid" in p and "create_time" in p
    ]


@dataclass(frozen=True)
class PidFileOwner:
    """What a pid file says about the process that holds it (see :func:`read_owner`)."""

    #: Whether a live process holds the file's lock (the instance runs).
    running: bool
    pid: int | None
    processes: list[ProcessRecord]
    #: The owner's start time (``psutil`` ``create_time``): guards a signal against pid reuse.
    create_time: float | None = None


#: How long a claim is retried while the file it found is not held (its owner was releasing).
CLAIM_RETRY_S = 2.0

#: How long a reader waits for a held pid file to hold complete JSON (its owner is mid-update).
READ_RETRY_S = 2.0


def read_owner(path: Path) -> PidFileOwner:
    """Look at a home's pid file without claiming it: is its owner alive, which pid, which processes.

    A held file whose content is not (yet) complete JSON is read again for up to
    :data:`READ_RETRY_S`: its owner is rewriting it.
    """
    deadline = time.monotonic() + READ_RETRY_S
    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return PidFileOwner(running=False, pid=None, processes=[])
        try:
            # A file released (unlinked) meanwhile is looked at again instead.
            if not _same_file(path, fd):
                continue
            running = _held(fd)
            content = _read(fd)
        finally:
            os.close(fd)
        pid = content.get("pid")
        if not running or isinstance(pid, int) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    created = content.get("create_time")
    return PidFileOwner(
        running=running,
        pid=pid if isinstance(pid, int) else None,
        processes=_records(content),
        create_time=float(created) if isinstance(created, int | float) else None,
    )


def _held(fd: int) -> bool:
    """Whether a claim holds the lock of the open file ``fd``.

    A shared, non-blocking ``flock`` on the very inode we read (released at once): it fails only
    against the owner's exclusive lock, creates no file (a probe through the path would recreate
    a file released meanwhile), and never makes two probing readers see each other as owners.
    filelock has no probe of another process's lock, so this one call is ours.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
