"""``mlwf up`` end to end: real Airflow processes, REST API, a DAG run, clean stop and restart."""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil
import pytest
from mlwf_testsupport import (
    CHROMIUM_ARGS,
    AirflowApi,
    assert_no_leftover_processes,
    free_port,
    poll,
    process_tree,
    require_executable,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO / "examples" / "dags"
MLWF = Path(sys.executable).with_name("mlwf")
READY_TIMEOUT = 180.0
# Two cores shared by five Airflow processes and SQLite: single requests can take seconds.
http = httpx.Client(timeout=30.0)


@dataclass
class UpProcess:
    """A running ``mlwf up``: its process, printed lines, URL, credentials and every pid seen."""

    popen: subprocess.Popen[str]
    home: Path
    #: What the test reads mlwf up's output from (its stdout, or a pipe reader such as tee).
    output: IO[str] | None = None
    lines: list[str] = field(default_factory=list)
    url: str = ""
    username: str = ""
    password: str = ""
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    tee: subprocess.Popen[str] | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def _read(self) -> None:
        output = self.output or self.popen.stdout
        assert output is not None
        for line in output:
            self.lines.append(line.rstrip("\n"))
            stripped = line.strip()
            if stripped.startswith("Airflow is ready at "):
                self.url = stripped.removeprefix("Airflow is ready at ")
            elif stripped.startswith("Username: "):
                self.username = stripped.removeprefix("Username: ")
            elif stripped.startswith("Password: "):
                self.password = stripped.removeprefix("Password: ")
                self._ready.set()
        self._ready.set()

    def _watch(self) -> None:
        # Collect every descendant ever alive (task runners come and go) for the orphan check.
        while self.popen.poll() is None:
            for proc in process_tree(self.popen.pid)[1:]:
                self.seen.setdefault(proc.pid, proc)
            time.sleep(0.5)

    def wait_ready(self) -> None:
        """Wait until URL and credentials are printed; fail with the output otherwise."""
        ready = self._ready.wait(READY_TIMEOUT)
        if not (ready and self.password):
            self.kill()
            pytest.fail("mlwf up did not become ready:\n" + "\n".join(self.lines))

    def interrupt(self, timeout: float = 60.0) -> int:
        """Send SIGINT (Ctrl-C) and return the exit code."""
        self.popen.send_signal(signal.SIGINT)
        return self.popen.wait(timeout=timeout)

    def kill(self) -> None:
        """Last-resort cleanup: kill mlwf up and everything it started."""
        procs = [*process_tree(self.popen.pid), *self.seen.values()]
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self.popen.wait(timeout=30)

    def snapshot(self) -> list[psutil.Process]:
        """Record the live process tree of mlwf up now and return every process ever seen."""
        for proc in process_tree(self.popen.pid)[1:]:
            self.seen.setdefault(proc.pid, proc)
        return list(self.seen.values())

    def cleanup(self) -> None:
        """Kill mlwf up if it still runs and whatever of the instance is left (by home or seen)."""
        if self.popen.poll() is None:
            self.kill()
        with contextlib.suppress(AssertionError):  # leftovers are killed by the assertion
            assert_no_leftover_processes(str(self.home), among=self.seen.values(), timeout=0)


def start_up(
    home: Path, cwd: Path, port: int, dags: Path = EXAMPLE_DAGS, tee: Path | None = None
) -> UpProcess:
    """Start ``mlwf up`` on ``home`` in ``cwd`` with ``dags``; with ``tee``, as ``mlwf up 2>&1 | tee``."""
    popen = subprocess.Popen(
        [
            str(MLWF),
            "up",
            "--home",
            str(home),
            "--port",
            str(port),
            "--dags-folder",
            str(dags),
        ],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    up = UpProcess(popen, home)
    if tee is not None:
        assert popen.stdout is not None
        # As in a terminal, Ctrl-C kills tee: a test run started in the background (`cmd &` in
        # a script) inherits SIGINT ignored, and tee would inherit that too.
        reader = subprocess.Popen(
            ["tee", str(tee)],
            stdin=popen.stdout,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        popen.stdout.close()  # tee is the only reader: when it dies, mlwf up's writes fail
        up.output = reader.stdout
        up.tee = reader
    threading.Thread(target=up._read, daemon=True).start()
    threading.Thread(target=up._watch, daemon=True).start()
    up.wait_ready()
    return up


def token(up: UpProcess) -> str:
    """Log in with the printed credentials and return a JWT."""
    response = http.post(
        f"{up.url}/auth/token", json={"username": up.username, "password": up.password}
    )
    assert response.status_code == 201, response.text
    access_token: str = response.json()["access_token"]
    return access_token


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary current directory holding the instance home."""
    return tmp_path_factory.mktemp("mlwf-up")


@pytest.fixture(scope="module")
def running(workdir: Path) -> Iterator[UpProcess]:
    """A running ``mlwf up`` shared by the tests of this module (stopped at the end if still up)."""
    started = time.monotonic()
    up = start_up(workdir / "home", workdir, free_port())
    print(f"mlwf up ready after {time.monotonic() - started:.1f} s")
    yield up
    if up.popen.poll() is None:
        up.kill()


def test_prints_url_and_admin_credentials(running: UpProcess) -> None:
    """Once healthy, mlwf up prints the URL and the admin password stored in the home's passwords file."""
    assert running.url.startswith("http://127.0.0.1:")
    assert running.username == "admin"
    stored = json.loads((running.home / "simple_auth_manager_passwords.json").read_text())
    assert stored == {"admin": running.password}
    health = http.get(f"{running.url}/api/v2/monitor/health").json()
    assert health["scheduler"]["status"] == "healthy"


def test_unauthenticated_requests_get_401(running: UpProcess) -> None:
    """The REST API refuses requests without a token."""
    assert http.get(f"{running.url}/api/v2/dags").status_code == 401


def test_example_dag_is_listed_and_runs(running: UpProcess) -> None:
    """hello_typed from examples/dags appears in GET /api/v2/dags and a triggered run succeeds."""
    api = AirflowApi(running.url, token(running), timeout=30)

    def listed() -> bool:
        return any(d["dag_id"] == "hello_typed" for d in api.get("/dags")["dags"])

    poll(listed, 90, "hello_typed in GET /api/v2/dags", 2)
    run_id = api.trigger("hello_typed")
    assert api.wait_run("hello_typed", run_id, timeout=120, interval=2) == "success"


def test_connections_form_offers_the_mlwf_connection_types(running: UpProcess) -> None:
    """The UI's connection form metadata (what its type picker lists) includes every mlwf connection type."""
    response = http.get(
        f"{running.url}/ui/connections/hook_meta",
        headers={"Authorization": f"Bearer {token(running)}"},
    )
    assert response.status_code == 200, response.text
    offered = {meta["connection_type"]: meta for meta in response.json()}
    for conn_type in ("mlwf_hdfs", "mlwf_jira", "mlwf_jenkins", "mlwf_mlflow"):
        assert conn_type in offered, f"{conn_type} missing from the connection form"
        assert offered[conn_type]["hook_name"], f"{conn_type} has no display name"


def test_ui_login_in_a_real_browser_lists_the_example_dags(
    running: UpProcess, tmp_path: Path
) -> None:
    """Headless Chromium signs in with the printed credentials and the DAG list shows the examples."""
    chromium = require_executable("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page()
            page.goto(running.url)
            page.wait_for_url("**/auth/login**", timeout=60_000)
            page.fill("input[name=username]", running.username)
            page.fill("input[name=password]", running.password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
            page.goto(f"{running.url}/dags")
            for dag_id in ("hello_typed", "ml_pipeline"):
                page.wait_for_selector(f"a:has-text('{dag_id}')", timeout=60_000)
            page.screenshot(path=str(tmp_path / "dags.png"), full_page=True)
        finally:
            browser.close()


SLEEPER_DAG = '''
"""A DAG whose tasks sleep: a Python task and a shell command (a process of its own)."""
import time

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def sleeper():
    @task
    def nap() -> None:
        time.sleep(600)

    nap()
    BashOperator(task_id="shell_nap", bash_command="sleep 600")


sleeper()
'''


def _private_files(root: Path) -> list[str]:
    """Return the files and directories under ``root`` that another user could read.

    Generated DAG files (``constructed/``) are left out: they are code, not secrets, written
    0644 by mlwf-constructors; the home's mode 0700 keeps other users away from them.
    """
    loose = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink() or "constructed" in path.relative_to(root).parts[:1]:
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            loose.append(f"{path} {oct(mode)}")
    return loose


def _listening(procs: list[psutil.Process]) -> list[tuple[str, int, int]]:
    """Return (address, port, pid) of every TCP socket the processes listen on."""
    found = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((conn.laddr.ip, conn.laddr.port, proc.pid))
    return found


def _log_server_port(home: Path) -> int:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(home / "airflow" / "airflow.cfg")
    # Airflow's default when mlwf does not choose one (the scheduler's own log server).
    return int(parser["logging"].get("worker_log_server_port", "8793"))


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_instance_created_through_the_api_lives_in_the_home(running: UpProcess) -> None:
    """Issue 10 item 16: an instance created through the API is written under the home, not the DAGs folder, and its DAG appears and runs."""
    api = AirflowApi(running.url, token(running), timeout=30)
    ctor = api.client_for("/mlwf/constructors")
    instance_id = f"in_home_{os.getpid()}"
    before = set((EXAMPLE_DAGS / "mlwf_constructed").glob("*"))
    response = ctor.post(
        "/instances",
        json={"instance_id": instance_id, "constructor": "train_evaluate", "values": {}},
    )
    try:
        assert response.status_code == 201, response.text
        generated = (
            running.home / "constructed" / "mlwf_constructed" / f"instance__{instance_id}.py"
        )
        assert generated.is_file()
        assert set((EXAMPLE_DAGS / "mlwf_constructed").glob("*")) == before
        dag = api.wait_dag(instance_id, timeout=90, interval=1)
        assert dag["bundle_name"] == "mlwf-constructed"
        assert api.wait_run(instance_id, api.trigger(instance_id), timeout=240, interval=2) == (
            "success"
        )
    finally:
        ctor.delete(f"/instances/{instance_id}")


def test_home_files_are_private_and_logs_hold_no_password(running: UpProcess) -> None:
    """Issue 10 item 7: after DAG runs, nothing in the home is readable by other users and no log file contains the admin password."""
    assert stat.S_IMODE(running.home.stat().st_mode) == 0o700
    for name in ("simple_auth_manager_passwords.json", "airflow/airflow.db", "secrets.json"):
        assert stat.S_IMODE((running.home / name).stat().st_mode) == 0o600, name
    assert _private_files(running.home) == []
    logs = [
        p
        for folder in (running.home / "logs", running.home / "airflow" / "logs")
        for p in folder.rglob("*")
        if p.is_file()
    ]
    assert any(p.name == "api-server.log" for p in logs)
    assert any("dag_id=" in str(p) for p in logs)  # task logs of the runs above
    assert [p for p in logs if running.password in p.read_text(errors="replace")] == []


def test_two_instances_side_by_side_and_a_sigkill_leaves_nothing(
    running: UpProcess, workdir: Path
) -> None:
    """Issue 10 items 13 and 15: a second mlwf up runs beside the first, every port of both is on loopback, and a SIGKILL of it takes down all its processes, running tasks included."""
    dags = workdir / "sleeper_dags"
    dags.mkdir()
    (dags / "sleeper.py").write_text(SLEEPER_DAG)
    port = free_port()
    second = start_up(workdir / "second", workdir, port, dags=dags)
    # Item 13 and item 15 are both checked, whichever fails: problems are collected, then asserted.
    problems: list[str] = []
    try:
        for up in (running, second):
            health = http.get(f"{up.url}/api/v2/monitor/health").json()
            assert health["scheduler"]["status"] == "healthy", up.url
        ports = {_log_server_port(up.home) for up in (running, second)}
        if len(ports) != 2:
            problems.append(f"item 13: both instances use log server port(s) {ports}")
        for up in (running, second):
            listening = _listening([psutil.Process(up.popen.pid), *up.snapshot()])
            if ("127.0.0.1", _log_server_port(up.home)) not in {(ip, p) for ip, p, _ in listening}:
                problems.append(f"item 13: no log server on 127.0.0.1 for {up.home}: {listening}")
            if exposed := [entry for entry in listening if entry[0] != "127.0.0.1"]:
                problems.append(f"item 13: {up.home} listens beyond loopback: {exposed}")

        api = AirflowApi(second.url, token(second), timeout=30)
        run_id = api.trigger("sleeper")

        def sleeping() -> bool:
            commands = []
            for proc in second.snapshot():
                with contextlib.suppress(psutil.Error):
                    commands.append(" ".join(proc.cmdline()))
            states = {
                ti["task_id"]: ti["state"]
                for ti in api.get(f"/dags/sleeper/dagRuns/{run_id}/taskInstances")["task_instances"]
            }
            return states == {"nap": "running", "shell_nap": "running"} and any(
                c.startswith("sleep 600") for c in commands
            )

        poll(sleeping, 120, f"both tasks of sleeper run {run_id} to be running", 1)
        procs = second.snapshot()
        second.popen.send_signal(signal.SIGKILL)
        second.popen.wait(timeout=10)
        _, alive = psutil.wait_procs(procs, timeout=10)
        left = []
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    left.append(" ".join(proc.cmdline()))
        if left:
            problems.append(f"item 15: alive 10 s after SIGKILL of mlwf up: {left}")
        if not _port_free(port):
            problems.append(f"item 15: port {port} still answers after SIGKILL of mlwf up")
        # The first instance does not depend on the second.
        assert (
            http.get(f"{running.url}/api/v2/monitor/health").json()["scheduler"]["status"]
            == "healthy"
        )
        assert problems == [], "\n".join(problems)
        assert_no_leftover_processes(str(second.home), timeout=5)
    finally:
        second.cleanup()


def test_ctrl_c_after_tee_died_stops_everything(workdir: Path, tmp_path: Path) -> None:
    """Issue 10 item 15: `mlwf up 2>&1 | tee`, then Ctrl-C killing tee first, still stops every component and frees the port."""
    port = free_port()
    up = start_up(workdir / "teed", workdir, port, tee=tmp_path / "up.log")
    try:
        procs = up.snapshot()
        assert len(procs) >= 5
        assert up.tee is not None
        up.tee.send_signal(signal.SIGINT)  # Ctrl-C reaches the whole pipeline; tee dies
        up.tee.wait(timeout=10)
        assert up.interrupt(timeout=90) == 0
        assert_no_leftover_processes(str(up.home), among=procs, timeout=5)
        assert _port_free(port)
    finally:
        up.cleanup()


def test_sigint_and_sighup_stop_everything_and_restart_keeps_the_password(
    running: UpProcess, workdir: Path
) -> None:
    """Ctrl-C exits 0 leaving no process; a second mlwf up on the home accepts the same password and makes a loosened home private again (issue 10 item 7); SIGHUP (the terminal closed) stops that one cleanly, port freed (item 15)."""
    password = running.password
    for proc in process_tree(running.popen.pid)[1:]:
        running.seen.setdefault(proc.pid, proc)
    assert len(running.seen) >= 4
    assert running.interrupt() == 0, "\n".join(running.lines)
    assert_no_leftover_processes(str(running.home), among=running.seen.values(), timeout=5)

    # A home left readable (as an older mlwf wrote it) is made private again on reuse.
    loosened = [
        running.home / "simple_auth_manager_passwords.json",
        running.home / "airflow" / "airflow.db",
    ]
    running.home.chmod(0o755)
    for path in loosened:
        path.chmod(0o644)
    # The restarted instance is also the one SIGHUP stops: one start of mlwf up fewer.
    again_port = free_port()
    again = start_up(running.home, workdir, again_port)
    try:
        assert again.password == password
        assert stat.S_IMODE(running.home.stat().st_mode) == 0o700
        assert [stat.S_IMODE(p.stat().st_mode) for p in loosened] == [0o600, 0o600]
        assert token(again)
        # A third mlwf up on the same home is refused while the second runs.
        refused = subprocess.run(
            [str(MLWF), "up", "--home", str(running.home), "--port", str(free_port())],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 1
        assert "already running" in refused.stderr
        procs = again.snapshot()
        again.popen.send_signal(signal.SIGHUP)
        assert again.popen.wait(timeout=90) == 0, "\n".join(again.lines)
        assert_no_leftover_processes(str(running.home), among=procs, timeout=5)
        assert _port_free(again_port)
    finally:
        again.cleanup()
