"""EmbeddedInstance without Airflow: refusals before start, and killing/restarting components (fake trees)."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator, Set
from pathlib import Path

import psutil
import pytest
from mlwf_instance import (
    COMPONENTS,
    ComponentDiedError,
    EmbeddedInstance,
    InstanceAlreadyRunningError,
    InvalidConfigError,
    MlwfInstanceError,
    PortInUseError,
    UnknownComponentError,
)
from mlwf_testsupport import free_port


def test_busy_port_is_refused_and_the_home_released(tmp_path: Path) -> None:
    """start() on a taken port raises PortInUseError naming the port, and frees the home again."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        instance = EmbeddedInstance(tmp_path / "home", port=port)
        with pytest.raises(PortInUseError, match=str(port)):
            instance.start()
    assert not instance.home.pid_file.exists()
    assert instance.pids() == set()


def test_second_instance_on_a_home_is_refused(tmp_path: Path) -> None:
    """A second instance on a home whose pid file is held gets InstanceAlreadyRunningError."""
    from mlwf_instance._pidfile import PidFile

    home = tmp_path / "home"
    home.mkdir()
    holder = PidFile(home / "mlwf-up.pid", home)
    holder.acquire()
    try:
        with pytest.raises(InstanceAlreadyRunningError, match="already running"):
            EmbeddedInstance(home, port=free_port()).start()
    finally:
        holder.release()


def test_invalid_overrides_fail_at_construction(tmp_path: Path) -> None:
    """Bad configuration overrides are reported when the instance is described, not at start."""
    with pytest.raises(InvalidConfigError, match="'no spaces'"):
        EmbeddedInstance(tmp_path / "home", extra_config={"no spaces": {"a": "b"}})


def test_wait_healthy_before_start_is_an_error(tmp_path: Path) -> None:
    """Waiting for health of an instance that was never started raises a clear error."""
    with pytest.raises(MlwfInstanceError, match="not started"):
        EmbeddedInstance(tmp_path / "home").wait_healthy(timeout=1)


def test_dags_folder_defaults_into_the_home(tmp_path: Path) -> None:
    """Without a DAGs folder the instance uses <home>/dags and serves on 127.0.0.1."""
    instance = EmbeddedInstance(tmp_path / "home", port=12345)
    assert instance.config.dags_folder == (tmp_path / "home" / "dags").resolve()
    assert instance.url == "http://127.0.0.1:12345"


def test_run_until_stopped_reports_a_component_that_dies(tmp_path: Path) -> None:
    """While running, a component exiting on its own surfaces as ComponentDiedError naming it."""
    instance = EmbeddedInstance(tmp_path / "home", port=free_port())
    instance.supervisor.spawn(
        "scheduler",
        [
            sys.executable,
            "-c",
            "import sys, time; time.sleep(0.5); print('db locked'); sys.exit(1)",
        ],
        env=dict(os.environ),
        log_path=instance.home.log_file("scheduler"),
    )
    with pytest.raises(ComponentDiedError, match="'scheduler' exited with code 1") as info:
        instance.run_until_stopped(poll_interval=0.1)
    assert "db locked" in info.value.log_tail
    assert instance.stop() == 0


# A stand-in for the `airflow` CLI: `db migrate` succeeds at once; any component records its pid
# under $FAKE_MARKERS/<component>/, forks two children (one of which leaves the process group, as
# daemonizing helpers do) and sleeps. A SIGTERM would leave a `<component>.sigterm` file: a crash
# (SIGKILL) leaves none.
FAKE_AIRFLOW = r"""
import os, signal, subprocess, sys, time
args = sys.argv[1:]
if args == ["db", "migrate"]:
    sys.exit(0)
markers = os.path.join(os.environ["FAKE_MARKERS"], args[0])
os.makedirs(markers, exist_ok=True)
if os.environ.get("FAKE_CHILD") == "1":
    if os.environ.get("FAKE_SETSID") == "1":
        os.setsid()
else:
    def on_term(signum, frame):
        open(markers + ".sigterm", "w").close()
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    for setsid in ("0", "1"):
        env = dict(os.environ, FAKE_CHILD="1", FAKE_SETSID=setsid)
        subprocess.Popen([sys.executable, sys.argv[0], *args], env=env)
open(os.path.join(markers, str(os.getpid())), "w").close()
while True:
    time.sleep(0.1)
"""
TREE_SIZE = 3  # a component and its two children


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _tree_pids(markers: Path, component: str, exclude: Set[int] = frozenset()) -> set[int]:
    """Wait until a fresh tree of ``component`` (pids not in ``exclude``) is up; return its pids."""
    deadline = time.monotonic() + 30
    while True:
        folder = markers / component
        pids = {int(p.name) for p in folder.iterdir()} - exclude if folder.is_dir() else set()
        if len(pids) >= TREE_SIZE and all(_alive(pid) for pid in pids):
            return pids
        assert time.monotonic() < deadline, f"{component} tree did not start: {pids}"
        time.sleep(0.1)


@pytest.fixture
def fake_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[EmbeddedInstance, Path]]:
    """A started instance whose components are fake process trees (no Airflow)."""
    script = tmp_path / "fake_airflow.py"
    script.write_text(FAKE_AIRFLOW)
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("FAKE_MARKERS", str(markers))
    monkeypatch.setattr(
        "mlwf_instance._instance.airflow_command",
        lambda *args: [sys.executable, str(script), *args],
    )
    monkeypatch.setattr(
        "mlwf_instance._instance.api_server_command",
        lambda port: [sys.executable, str(script), "api-server", str(port)],
    )
    instance = EmbeddedInstance(tmp_path / "home", port=free_port())
    instance.start()
    try:
        yield instance, markers
    finally:
        instance.stop(grace=2.0)


def test_kill_component_sigkills_its_whole_tree_and_only_it(
    fake_instance: tuple[EmbeddedInstance, Path],
) -> None:
    """kill_component SIGKILLs the named component's tree (no SIGTERM clean-up), reaps it and spares the others."""
    instance, markers = fake_instance
    trees = {name: _tree_pids(markers, name) for name in COMPONENTS}
    killed = instance.kill_component("scheduler")
    assert set(killed) == trees["scheduler"]
    assert [pid for pid in trees["scheduler"] if _alive(pid)] == []
    assert not (markers / "scheduler.sigterm").exists()
    assert all(_alive(pid) for name in COMPONENTS if name != "scheduler" for pid in trees[name])
    assert instance.killed_components == {"scheduler"}
    assert instance.pids().isdisjoint(trees["scheduler"])
    # Nothing of the killed tree is a zombie child of ours.
    assert [c for c in psutil.Process().children() if c.pid in trees["scheduler"]] == []


def test_a_killed_component_is_not_reported_as_died(
    fake_instance: tuple[EmbeddedInstance, Path],
) -> None:
    """While a component is deliberately down, check_running does not raise; killing it again is a no-op."""
    instance, markers = fake_instance
    _tree_pids(markers, "triggerer")
    instance.kill_component("triggerer")
    instance.check_running()
    assert instance.kill_component("triggerer") == []


def test_restart_component_starts_it_again_and_monitoring_resumes(
    fake_instance: tuple[EmbeddedInstance, Path],
) -> None:
    """restart_component starts a killed component anew; when the new process dies, check_running reports it."""
    instance, markers = fake_instance
    first = _tree_pids(markers, "scheduler")
    instance.kill_component("scheduler")
    pid = instance.restart_component("scheduler")
    second = _tree_pids(markers, "scheduler", exclude=first)
    assert pid in second and pid not in first
    assert instance.killed_components == set()
    assert second <= instance.pids()
    instance.check_running()
    psutil.Process(pid).kill()
    psutil.Process(pid).wait(timeout=10)
    try:
        with pytest.raises(ComponentDiedError, match="'scheduler' exited"):
            instance.check_running()
    finally:
        # The leader died by the test's hand, so its setsid child is an orphan the instance can
        # no longer find as a descendant: reap what is left of the tree here.
        for orphan in second - {pid}:
            if _alive(orphan):
                psutil.Process(orphan).kill()


def test_restart_of_a_running_component_kills_it_first(
    fake_instance: tuple[EmbeddedInstance, Path],
) -> None:
    """restart_component on a running component replaces its whole tree with a new one."""
    instance, markers = fake_instance
    first = _tree_pids(markers, "dag-processor")
    instance.restart_component("dag-processor")
    second = _tree_pids(markers, "dag-processor", exclude=first)
    assert [pid for pid in first if _alive(pid)] == []
    assert all(_alive(pid) for pid in second)


def test_stop_reaps_restarted_components_too(
    fake_instance: tuple[EmbeddedInstance, Path],
) -> None:
    """stop() after a kill and a restart leaves no process of any tree, old or new."""
    instance, markers = fake_instance
    first = {name: _tree_pids(markers, name) for name in COMPONENTS}
    instance.kill_component("scheduler")
    instance.restart_component("scheduler")
    second = _tree_pids(markers, "scheduler", exclude=first["scheduler"])
    instance.stop(grace=2.0)
    every = set().union(*first.values(), second)
    assert [pid for pid in every if _alive(pid)] == []
    assert instance.killed_components == set()


def test_unknown_component_names_are_refused(fake_instance: tuple[EmbeddedInstance, Path]) -> None:
    """A name that is not a component is refused with an error listing the components."""
    instance, _ = fake_instance
    with pytest.raises(UnknownComponentError, match=r"'worker'.*api-server, scheduler"):
        instance.kill_component("worker")
    with pytest.raises(UnknownComponentError):
        instance.restart_component("webserver")


def test_kill_component_needs_a_started_instance(tmp_path: Path) -> None:
    """Killing a component of an instance that is not started is an error naming the home."""
    with pytest.raises(MlwfInstanceError, match="not started"):
        EmbeddedInstance(tmp_path / "home").kill_component("scheduler")
