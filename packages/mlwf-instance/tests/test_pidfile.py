"""The pid file: one live ``mlwf up`` per home, stale files taken over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlwf_instance import InstanceAlreadyRunningError
from mlwf_instance._pidfile import PidFile, ProcessRecord


def test_second_claim_is_refused_naming_the_owner(tmp_path: Path) -> None:
    """While one claim is held, another on the same file fails with the owner's pid and the home."""
    first = PidFile(tmp_path / "mlwf-up.pid", tmp_path)
    first.acquire()
    try:
        with pytest.raises(InstanceAlreadyRunningError) as info:
            PidFile(tmp_path / "mlwf-up.pid", tmp_path).acquire()
        assert str(tmp_path) in str(info.value)
        assert info.value.pid is not None
    finally:
        first.release()


def test_release_removes_the_file_and_frees_the_home(tmp_path: Path) -> None:
    """After release the file is gone and the home can be claimed again."""
    path = tmp_path / "mlwf-up.pid"
    claim = PidFile(path, tmp_path)
    claim.acquire()
    claim.release()
    assert not path.exists()
    again = PidFile(path, tmp_path)
    again.acquire()
    again.release()


def test_stale_file_is_taken_over_with_its_process_records(tmp_path: Path) -> None:
    """An unlocked pid file left by a dead owner is ignored, and its recorded processes reported."""
    path = tmp_path / "mlwf-up.pid"
    path.write_text(
        json.dumps({"pid": 999999, "processes": [{"pid": 424242, "create_time": 12.5}]})
    )
    claim = PidFile(path, tmp_path)
    claim.acquire()
    try:
        assert claim.stale_processes == [ProcessRecord(424242, 12.5)]
        assert json.loads(path.read_text())["processes"] == []
    finally:
        claim.release()


def test_garbled_file_is_treated_as_stale(tmp_path: Path) -> None:
    """A pid file with garbage in it does not block a new claim."""
    path = tmp_path / "mlwf-up.pid"
    path.write_text("garbage")
    claim = PidFile(path, tmp_path)
    claim.acquire()
    assert claim.stale_processes == []
    claim.release()


def test_reader_never_sees_a_half_written_file(tmp_path: Path) -> None:
    """While the owner rewrites its records (longer, then shorter), a reader always gets them whole.

    ``mlwf instance status`` and ``down`` read the file of a running ``up`` that records its
    processes as they start and restart; an empty or garbled read would say "not running".
    """
    import os
    import threading

    from mlwf_instance._pidfile import read_owner

    path = tmp_path / "mlwf-up.pid"
    claim = PidFile(path, tmp_path)
    claim.acquire()
    stop = threading.Event()
    many = [ProcessRecord(100000 + i, 1.5 + i, f"worker-{i}") for i in range(40)]
    claim.record(many[:1])

    def rewrite() -> None:
        while not stop.is_set():
            claim.record(many)
            claim.record(many[:1])

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        seen = {len(read_owner(path).processes) for _ in range(400)}
        owners = [read_owner(path) for _ in range(400)]
    finally:
        stop.set()
        writer.join()
        claim.release()
    assert all(o.running and o.pid == os.getpid() for o in owners)
    assert all(o.create_time is not None for o in owners)
    assert seen <= {1, 40}


def test_status_reads_a_held_file_without_disturbing_it(tmp_path: Path) -> None:
    """read_owner sees a held claim as running with its pid and mode 0600, and after release finds nothing and creates nothing."""
    import os
    import stat

    from mlwf_instance._pidfile import read_owner

    path = tmp_path / "mlwf-up.pid"
    claim = PidFile(path, tmp_path)
    claim.acquire()
    try:
        owner = read_owner(path)
        assert owner.running and owner.pid == os.getpid()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert claim.held  # the probe did not take or drop the claim
        claim.record([ProcessRecord(1, 2.0, "scheduler")])
        assert read_owner(path).processes == [ProcessRecord(1, 2.0, "scheduler")]
    finally:
        claim.release()
    owner = read_owner(path)
    assert not owner.running and owner.pid is None
    assert not path.exists()


CLAIMER = """
import sys, time
from pathlib import Path
from mlwf_instance import InstanceAlreadyRunningError
from mlwf_instance._pidfile import PidFile

path = Path(sys.argv[1])
ownerless = claimed = 0
deadline = time.monotonic() + 4
while time.monotonic() < deadline:
    claim = PidFile(path, path.parent)
    try:
        claim.acquire()
    except InstanceAlreadyRunningError as err:
        ownerless += err.pid is None  # refused, yet nobody held the file
        continue
    claimed += 1
    claim.release()
print(claimed, ownerless)
"""


def test_a_claim_racing_a_release_is_never_refused_without_an_owner(tmp_path: Path) -> None:
    """Two processes claim and release one home in a tight loop: a claim that meets the other's
    release (its file unlinked between open and lock) retries instead of reporting a running
    instance without a pid."""
    import subprocess
    import sys

    script = tmp_path / "claimer.py"
    script.write_text(CLAIMER)
    path = tmp_path / "home" / "mlwf-up.pid"
    path.parent.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [tuple(map(int, p.communicate(timeout=60)[0].split())) for p in procs]
    assert all(claimed > 50 for claimed, _ in results), results
    assert sum(ownerless for _, ownerless in results) == 0, results
