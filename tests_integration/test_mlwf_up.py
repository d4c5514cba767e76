"""``mlwf up`` end to end: real Airflow processes, REST API, a DAG run, clean stop and restart."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
from mlwf_testsupport import (
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
    lines: list[str] = field(default_factory=list)
    url: str = ""
    username: str = ""
    password: str = ""
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    _ready: threading.Event = field(default_factory=threading.Event)

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
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


def start_up(home: Path, cwd: Path, port: int) -> UpProcess:
    """Start ``mlwf up`` on ``home`` in ``cwd`` with the repo's example DAGs."""
    popen = subprocess.Popen(
        [
            str(MLWF),
            "up",
            "--home",
            str(home),
            "--port",
            str(port),
            "--dags-folder",
            str(EXAMPLE_DAGS),
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


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_ui_login_in_a_real_browser_lists_the_example_dags(
    running: UpProcess, tmp_path: Path
) -> None:
    """Headless Chromium signs in with the printed credentials and the DAG list shows the examples."""
    chromium = require_executable("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
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


def test_sigint_stops_everything_and_restart_keeps_the_password(
    running: UpProcess, workdir: Path
) -> None:
    """Ctrl-C exits 0 leaving no process; a second mlwf up on the home accepts the same password."""
    password = running.password
    for proc in process_tree(running.popen.pid)[1:]:
        running.seen.setdefault(proc.pid, proc)
    assert len(running.seen) >= 4
    assert running.interrupt() == 0, "\n".join(running.lines)
    assert_no_leftover_processes(str(running.home), among=running.seen.values(), timeout=5)

    again = start_up(running.home, workdir, free_port())
    try:
        assert again.password == password
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
    finally:
        for proc in process_tree(again.popen.pid)[1:]:
            again.seen.setdefault(proc.pid, proc)
        code = again.interrupt()
    assert code == 0, "\n".join(again.lines)
    assert_no_leftover_processes(str(running.home), among=again.seen.values(), timeout=5)
