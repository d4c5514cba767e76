"""mlwf-types inside a real Airflow instance: api-server, scheduler, dag-processor, triggerer.

One instance serves the module: the DAG folder holds a sound DAG, a statically wrong one and one
that is wrong only at run time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from mlwf_instance import EmbeddedInstance
from mlwf_testsupport import assert_no_leftover_processes, free_port

DAGS = Path(__file__).parent / "dags_types"
T = TypeVar("T")


class Api:
    """A small authenticated client of Airflow's REST API v2."""

    def __init__(self, instance: EmbeddedInstance) -> None:
        self.client = httpx.Client(
            base_url=f"{instance.url}/api/v2",
            headers={"Authorization": f"Bearer {instance.api_token()}"},
            timeout=30,
        )

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self.client.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        response = self.client.post(
            f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        def finished() -> str | None:
            state = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        return poll(finished, timeout, f"run {run_id} of {dag_id} to finish")

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        data = self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1", full_content=True
        )
        return json.dumps(data["content"])


def poll(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedInstance]:
    home = tmp_path_factory.mktemp("types-instance")
    inst = EmbeddedInstance(
        home,
        dags_folder=DAGS,
        port=free_port(),
        extra_config={"mlwf_types": {"mode": "error"}},
        dag_refresh_interval=5,
    )
    with inst:
        yield inst
    assert_no_leftover_processes(str(home))


@pytest.fixture(scope="module")
def api(instance: EmbeddedInstance) -> Api:
    return Api(instance)


def wait_dag(api: Api, dag_id: str) -> None:
    poll(
        lambda: True if api.client.get(f"/dags/{dag_id}").status_code == 200 else None,
        120,
        f"DAG {dag_id}",
    )


def test_mismatched_dag_is_an_import_error_in_the_api_and_cli(
    instance: EmbeddedInstance, api: Api
) -> None:
    """The statically wrong DAG is refused; the API and `airflow dags list-import-errors` show every issue."""

    def bad_error() -> str | None:
        for error in api.get("/importErrors")["import_errors"]:
            if error["filename"].endswith("typed_bad.py"):
                return str(error["stack_trace"])
        return None

    message = poll(bad_error, 120, "the import error of typed_bad.py")
    assert "mlwf-types found 2 type error(s) in DAG 'typed_bad'" in message
    assert (
        "DAG 'typed_bad' task 'count' argument 'count' expects int, but task 'label' pushes XCom "
        "'return_value' of type str" in message
    )
    assert "DAG 'typed_bad' task 'half' argument 'n' expects float" in message
    assert api.client.get("/dags/typed_bad").status_code == 404

    env = dict(
        os.environ,
        AIRFLOW_HOME=str(instance.home.airflow_home),
        AIRFLOW_CONFIG=str(instance.home.airflow_cfg),
    )
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "list-import-errors", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "[" in out.stdout, out.stderr[-3000:]  # the command exits 1 whenever import errors exist
    [payload] = [
        line for line in out.stdout.splitlines() if line.startswith("[")
    ]  # log lines come first
    listed = json.loads(payload)
    [row] = [r for r in listed if r["filepath"].endswith("typed_bad.py")]
    assert "expects int, but task 'label' pushes XCom 'return_value' of type str" in row["error"]


def test_sound_dag_loads_and_runs(api: Api) -> None:
    """The sound DAG (classic, TaskFlow, mapped, explicit pushes) runs to success with the guards on."""
    wait_dag(api, "typed_good")
    run_id = api.trigger("typed_good")
    assert api.wait_run("typed_good", run_id) == "success"
    value = api.get(
        f"/dags/typed_good/dagRuns/{run_id}/taskInstances/total/xcomEntries/return_value"
    )["value"]
    # count=3 pushes doubled=[3, 3] and returns 4; spread -> [4, 4]; squares -> [16.0, 16.0].
    # XCom's JSON round trip hands the integral float 16.0 back as the int 16, so the sum prints
    # as 38: one reason the checker accepts int where float is declared (the numeric tower).
    square = api.get(
        f"/dags/typed_good/dagRuns/{run_id}/taskInstances/square/xcomEntries/return_value",
        map_index=0,
    )
    assert square["value"] == 16 and isinstance(square["value"], int)
    assert value == "sum: 38"


def test_runtime_mismatches_fail_the_tasks_and_push_nothing(api: Api) -> None:
    """A rendered template of the wrong type, a wrong return and a lying TaskFlow function each fail with XComTypeError."""
    wait_dag(api, "typed_runtime")
    run_id = api.trigger("typed_runtime")
    assert api.wait_run("typed_runtime", run_id) == "failed"
    states = {
        ti["task_id"]: ti["state"]
        for ti in api.get(f"/dags/typed_runtime/dagRuns/{run_id}/taskInstances")["task_instances"]
    }
    assert states == {"templated_count": "failed", "lying_label": "failed", "claims_int": "failed"}
    expectations = {
        "templated_count": "argument 'count' expects int, but received 'seven' (str) at run time",
        "lying_label": "XCom 'return_value' is declared as str, but the task produced 404 (int)",
        "claims_int": "XCom 'return_value' is declared as int, but the task produced 'not an int' (str)",
    }
    for task_id, text in expectations.items():
        log = api.task_log("typed_runtime", run_id, task_id)
        assert "XComTypeError" in log and text in log, (task_id, log[-2000:])
        response = api.client.get(
            f"/dags/typed_runtime/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        )
        assert response.status_code == 404, f"{task_id} pushed a value despite the mismatch"
