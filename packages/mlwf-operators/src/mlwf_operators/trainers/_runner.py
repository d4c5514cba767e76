"""Run a training entry point in a separate process, stream its log, enforce a timeout."""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import psutil

from mlwf_operators._errors import (
    TrainerCrashedError as TrainerCrashedError,
    TrainerError as TrainerError,
    TrainerTimeoutError as TrainerTimeoutError,
)
from mlwf_operators.processes import kill_tree, quote_log


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def run_trainer(
    entry_point: str,
    params: Mapping[str, Any],
    data: str,
    output_dir: Path,
    *,
    timeout: float,
    log_line: Callable[[str], None] = print,
    tail_lines: int = 40,
    env: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Run ``entry_point(params, data, output_dir)`` in a child process; return its metrics.

    Each line the child prints goes to ``log_line`` as it comes. After ``timeout`` seconds the
    child's whole process tree is killed and :class:`TrainerTimeoutError` raised; a non-zero exit
    raises :class:`TrainerCrashedError`. Both messages end with the last ``tail_lines`` log lines.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    try:
        params_json = json.dumps(dict(params))
    except (TypeError, ValueError) as exc:
        raise TrainerError(
            f"hyperparameters of trainer {entry_point!r} are not JSON-serialisable: {exc}"
        ) from exc
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlwf-train-") as scratch:
        spec_file = Path(scratch) / "spec.json"
        result_file = Path(scratch) / "metrics.json"
        spec_file.write_text(
            json.dumps(
                {
                    "entry_point": entry_point,
                    "params": json.loads(params_json),
                    "data": data,
                    "output_dir": str(output_dir),
                    "result_file": str(result_file),
                }
            ),
            encoding="utf-8",
        )
        child_env = dict(os.environ if env is None else env)
        child_env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlwf_operators.trainers._child", str(spec_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=child_env,
            start_new_session=True,  # its own process group: a timeout kills the whole tree
        )
        assert proc.stdout is not None
        # Taken now (the child cannot have been reaped yet): it remembers the start time, so the
        # group's reparented members are found and killed after the child itself has gone.
        leader = psutil.Process(proc.pid)
        lines: queue.Queue[str | None] = queue.Queue()
        pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        pump.start()
        tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    kill_tree(leader, grace=0)
                    proc.wait()
                    raise TrainerTimeoutError(
                        f"trainer {entry_point!r} exceeded its timeout of {timeout:g} s; its process tree "
                        f"(pid {proc.pid}) was killed. Last lines of its log:\n{quote_log(tail)}"
                    )
                try:
                    line = lines.get(timeout=min(remaining, 0.5))
                except queue.Empty:
                    continue
                if line is None:
                    break
                tail.append(line)
                log_line(line)
            returncode = proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
        except BaseException:
            kill_tree(leader, grace=0)
            proc.wait()
            raise
        finally:
            proc.stdout.close()
            pump.join(timeout=5)
        kill_tree(leader, grace=0)  # grandchildren the trainer left behind
        if returncode != 0:
            how = (
                f"was killed by signal {signal.Signals(-returncode).name}"
                if returncode < 0
                else f"exited with code {returncode}"
            )
            raise TrainerCrashedError(
                f"trainer {entry_point!r} {how}. Last lines of its log:\n{quote_log(tail)}"
            )
        if not result_file.is_file():
            raise TrainerCrashedError(f"trainer {entry_point!r} exited 0 but wrote no metrics")
        metrics: dict[str, float] = json.loads(result_file.read_text(encoding="utf-8"))
        return metrics
