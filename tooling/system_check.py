"""The whole system installed from an index: every package from it, `mlwf up` run from the venv.

Used by `release_check.py --system` (through nox: `uv run nox -s release_check`), after the
packages were built and uploaded to its throwaway index:

1. installs every mlwf package at the version just built from that index into a fresh venv
   (third-party packages from the normal registry) and checks that each imports from the venv;
2. copies the repository's `examples/` into an empty folder (a user's working directory) and
   runs the venv's `mlwf up` there, as a newcomer would, on a free port and a fresh home;
3. once it prints its URL and password: logs in through the REST API, waits until the example
   DAGs are listed with no import error (they import mlwf-types, -operators, -tuning and
   -constructors from the venv), and runs `hello_typed` to success;
4. sends SIGINT to its process group (Ctrl-C in a terminal), expects exit status 0 within
   `STOP_TIMEOUT` s and no process of the instance left (any left is killed and named).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import psutil
from local_index import free_port
from mlwf_testsupport import AirflowApi, poll
from workspace import REPO_ROOT, Package

__all__ = ["EXAMPLE_DAGS", "SystemCheckError", "check_system"]

#: Seconds `mlwf up` may take to print its URL and password (a cold first start migrates).
READY_TIMEOUT = 300.0
#: Seconds a run of `hello_typed` may take, and Ctrl-C to stop everything.
RUN_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
#: DAGs of `examples/dags` that must be listed with no import error.
EXAMPLE_DAGS = ("hello_typed", "ml_pipeline", "tuning_iris")
#: Environment variables that would point the venv's `mlwf` at this repository or another home.
_DROPPED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "AIRFLOW_HOME", "AIRFLOW_CONFIG")


class SystemCheckError(Exception):
    """A step of the system check failed."""


def _run(args: Sequence[str], cwd: Path | None = None) -> str:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise SystemCheckError(f"`{' '.join(args[:4])} ...` failed:\n{output[-4000:]}")
    return done.stdout


def _install(packages: Sequence[Package], wheels: dict[str, Path], index: str, venv: Path) -> Path:
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    _run(["uv", "venv", "-q", "--python", python_version, str(venv)])
    python = venv / "bin" / "python"
    pins = [f"{p.name}=={wheels[p.name].name.split('-')[1]}" for p in packages]
    index_args = ["--index", f"mlwf-local={index}simple/"]
    _run(["uv", "pip", "install", "-q", "--python", str(python), *index_args, *pins])
    names = ", ".join(p.import_name for p in packages)
    script = f"import {names}\nfor m in ({names}): print(m.__file__)"
    for where in _run([str(python), "-c", script], cwd=venv).split():
        if not Path(where).is_relative_to(venv):
            raise SystemCheckError(f"imported from {where}, not from the venv {venv}")
    return python


class _Up:
    """A running `mlwf up`: its output lines, URL and password."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.popen = popen
        self.lines: list[str] = []
        self.url = ""
        self.password = ""
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            stripped = line.strip()
            self.lines.append(stripped)
            if "Airflow is ready at " in stripped:
                self.url = stripped.split("Airflow is ready at ", 1)[1].split()[0]
            if stripped.startswith("Password: ") and self.url:
                self.password = stripped.removeprefix("Password: ")
                self.ready.set()
        self.ready.set()  # output ended: the process exited

    def output(self) -> str:
        return "\n".join(self.lines[-60:])


def _leftovers(snapshot: list[psutil.Process]) -> list[str]:
    """Kill and describe the processes of `snapshot` still alive (zombies aside)."""
    left = []
    for proc in snapshot:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{proc.pid} {' '.join(proc.cmdline())[:160]}")
                proc.kill()
        except psutil.Error:
            continue
    return left


def check_system(
    packages: Sequence[Package], wheels: dict[str, Path], index: str, work: Path
) -> str:
    """Install `packages` (all of them) from `index`, run `mlwf up` from the venv; return a summary."""
    started = time.monotonic()
    venv = work / "venv"
    python = _install(packages, wheels, index, venv)
    installed = time.monotonic()
    cwd = work / "user"
    shutil.copytree(REPO_ROOT / "examples", cwd / "examples")
    env = {
        k: v for k, v in os.environ.items() if k not in _DROPPED and not k.startswith("AIRFLOW__")
    }
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    popen = subprocess.Popen(
        [
            str(python.parent / "mlwf"),
            "up",
            "--home",
            str(cwd / ".mlwf"),
            "--port",
            str(free_port()),
        ],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # its own process group: Ctrl-C goes to the group, as in a terminal
        # As in a terminal: a check started from a script in the background inherits SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    up = _Up(popen)
    snapshot: list[psutil.Process] = []
    try:
        if not up.ready.wait(READY_TIMEOUT) or not up.password:
            raise SystemCheckError(f"mlwf up (installed) did not become ready:\n{up.output()}")
        ready = time.monotonic()
        login = httpx.post(
            f"{up.url}/auth/token",
            json={"username": "admin", "password": up.password},
            timeout=30,
        )
        if login.status_code != 201:
            raise SystemCheckError(f"login failed: {login.status_code} {login.text[:500]}")
        api = AirflowApi(up.url, login.json()["access_token"], timeout=30)

        def listed() -> bool:
            dags = {d["dag_id"] for d in api.get("/dags", limit=100)["dags"]}
            return set(EXAMPLE_DAGS) <= dags

        poll(listed, 120, f"the example DAGs {EXAMPLE_DAGS} listed", 2)
        errors = api.get("/importErrors")
        if errors["total_entries"]:
            raise SystemCheckError(f"import errors of the example DAGs: {errors['import_errors']}")
        run_id = api.trigger("hello_typed")
        state = api.wait_run("hello_typed", run_id, timeout=RUN_TIMEOUT, interval=2)
        if state != "success":
            raise SystemCheckError(f"hello_typed ended {state}:\n{up.output()}")
        ran = time.monotonic()
        me = psutil.Process(popen.pid)
        snapshot = [me, *me.children(recursive=True)]
        os.killpg(popen.pid, signal.SIGINT)
        try:
            code = popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SystemCheckError(
                f"mlwf up did not stop within {STOP_TIMEOUT:.0f} s of Ctrl-C:\n{up.output()}"
            ) from None
        if code != 0:
            raise SystemCheckError(f"mlwf up exited {code} on Ctrl-C:\n{up.output()}")
        time.sleep(1)
        left = _leftovers(snapshot)
        if left:
            raise SystemCheckError("processes left after Ctrl-C (now killed):\n" + "\n".join(left))
        stopped = time.monotonic()
    finally:
        if popen.poll() is None:  # a step failed: stop it as Ctrl-C would, then kill what is left
            try:
                me = psutil.Process(popen.pid)
                snapshot += [me, *me.children(recursive=True)]
            except psutil.Error:
                pass
            os.killpg(popen.pid, signal.SIGINT)
            try:
                popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
        _leftovers(snapshot)
    return (
        f"system ({len(packages)} packages from the index): install {installed - started:.0f} s, "
        f"mlwf up ready {ready - installed:.0f} s, hello_typed success {ran - ready:.0f} s, "
        f"Ctrl-C stopped everything in {stopped - ran:.1f} s"
    )
