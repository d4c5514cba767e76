"""EmbeddedInstance refusals that happen before any Airflow process starts."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
from mlwf_instance import (
    ComponentDiedError,
    EmbeddedInstance,
    InstanceAlreadyRunningError,
    InvalidConfigError,
    MlwfInstanceError,
    PortInUseError,
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
