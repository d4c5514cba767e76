"""mlwf-types inside a real Airflow instance: api-server, scheduler, dag-processor, triggerer.

The package's instance (``conftest.py``, type checking in ``error`` mode) serves the module: its
DAG folder holds, from ``dags_types/``, a sound DAG, a statically wrong one and one that is wrong
only at run time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from mlwf_instance import EmbeddedInstance
from mlwf_testsupport import AirflowApi, poll


@pytest.fixture(scope="module")
def api(instance: EmbeddedInstance) -> Iterator[AirflowApi]:
    with AirflowApi.for_instance(instance, timeout=30) as client:
        yield client


def test_mismatched_dag_is_an_import_error_in_the_api_and_cli(
    instance: EmbeddedInstance, api: AirflowApi
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


def test_sound_dag_loads_and_runs(api: AirflowApi) -> None:
    """The sound DAG (classic, TaskFlow, mapped, explicit pushes) runs to success with the guards on."""
    api.wait_dag("typed_good", timeout=120)
    run_id = api.trigger("typed_good")
    assert api.wait_run("typed_good", run_id, timeout=180) == "success"
    value = api.xcom("typed_good", run_id, "total")
    # count=3 pushes doubled=[3, 3] and returns 4; spread -> [4, 4]; squares -> [16.0, 16.0].
    # XCom's JSON round trip hands the integral float 16.0 back as the int 16, so the sum prints
    # as 38: one reason the checker accepts int where float is declared (the numeric tower).
    square = api.xcom("typed_good", run_id, "square", map_index=0)
    assert square == 16 and isinstance(square, int)
    assert value == "sum: 38"


def test_runtime_mismatches_fail_the_tasks_and_push_nothing(api: AirflowApi) -> None:
    """A rendered template of the wrong type, a wrong return and a lying TaskFlow function each fail with XComTypeError."""
    api.wait_dag("typed_runtime", timeout=120)
    run_id = api.trigger("typed_runtime")
    assert api.wait_run("typed_runtime", run_id, timeout=180) == "failed"
    states = {ti["task_id"]: ti["state"] for ti in api.task_instances("typed_runtime", run_id)}
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
