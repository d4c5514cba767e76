"""Two team instances from two specs side by side on one machine: own databases, ports and homes.

Team A runs PostgreSQL + Celery (one worker, database broker) started from Python
(``Instance``), team B MariaDB + LocalExecutor started with ``mlwf instance up``; each has a
DAG folder of its own. Neither sees the other's DAGs, runs or constructor instances, stopping A
leaves B running, and ``mlwf instance status``/``down`` report and stop B.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlwf_instance import Instance, load_spec
from mlwf_testsupport import AirflowApi, assert_no_leftover_processes, free_port, throwaway_database

EXAMPLE_CONSTRUCTORS = (
    Path(__file__).resolve().parents[1] / "examples" / "dags" / "example_constructors.py"
)
CONSTRUCTORS = "/mlwf/constructors"
MLWF = [sys.executable, "-m", "mlwf_instance"]

DAG_FILE = '''"""A one-task airflow dag of team {team}."""
from airflow.sdk import dag, task


@dag(dag_id="only_{team}", schedule=None)
def only_{team}():
    @task
    def hello() -> str:
        return "{team}"

    hello()


only_{team}()
'''


def _team(root: Path, team: str, database_url: str, **fields: Any) -> Path:
    dags = root / f"dags_{team}"
    dags.mkdir()
    (dags / f"only_{team}.py").write_text(DAG_FILE.format(team=team))
    (dags / EXAMPLE_CONSTRUCTORS.name).write_text(EXAMPLE_CONSTRUCTORS.read_text())
    spec = {
        "name": f"team-{team}",
        "database": database_url.replace("+psycopg", "").replace("+pymysql", ""),
        "dag_folders": [str(dags)],
        "home": str(root / f"home_{team}"),
        "api": {"port": free_port()},
        "airflow_config": {"mlwf_constructors": {"bundle_modules": "example_constructors"}},
        **fields,
    }
    path = root / f"team-{team}.json"
    path.write_text(json.dumps(spec))
    return path


def _mlwf(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLWF, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def teams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("side-by-side")
    with (
        throwaway_database("postgresql", "team_a") as url_a,
        throwaway_database("mariadb", "team_b") as url_b,
    ):
        spec_a = _team(root, "a", url_a, executor="celery", celery={"workers": 1, "concurrency": 2})
        spec_b = _team(root, "b", url_b)
        a = Instance(load_spec(spec_a))
        started = time.monotonic()
        up_b = subprocess.Popen(
            [*MLWF, "instance", "up", str(spec_b), "--timeout", "600"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            a.start()
            a.wait_healthy(timeout=600)
            assert up_b.stdout is not None
            output = []
            for line in up_b.stdout:
                output.append(line)
                if "Press Ctrl-C to stop." in line:
                    break
            assert up_b.poll() is None, "".join(output)
            print(f"\ntiming side by side: both healthy after {time.monotonic() - started:.1f} s")
            yield {
                "a": a,
                "b": Instance(load_spec(spec_b)),
                "spec_a": spec_a,
                "spec_b": spec_b,
                "up_b": up_b,
                "output_b": output,
            }
        finally:
            a.stop()
            if up_b.poll() is None:
                up_b.terminate()
            up_b.wait(timeout=120)
        for team in ("a", "b"):
            assert_no_leftover_processes(str(root / f"home_{team}"))


def test_each_sees_only_its_own_dags_runs_and_instances(teams: dict[str, Any]) -> None:
    """Issue 11: two instances on one machine keep their DAGs, runs and constructor instances apart."""
    a, b = (AirflowApi.for_instance(teams[t]) for t in ("a", "b"))
    assert teams["a"].url != teams["b"].url
    assert teams["a"].home.root != teams["b"].home.root
    assert teams["a"].database.name != teams["b"].database.name
    run_a = a.trigger("only_a")
    run_b = b.trigger("only_b")
    assert a.wait_run("only_a", run_a, timeout=300) == "success"
    assert b.wait_run("only_b", run_b, timeout=300) == "success"
    assert a.xcom("only_a", run_a, "hello") == "a" and b.xcom("only_b", run_b, "hello") == "b"
    assert a.client.get("/dags/only_b").status_code == 404
    assert b.client.get("/dags/only_a").status_code == 404
    body = {"instance_id": "a_only", "constructor": "train_evaluate", "values": {}}
    assert a.client_for(CONSTRUCTORS).post("/instances", json=body).status_code == 201
    listed_b = b.client_for(CONSTRUCTORS).get("/instances").json()["instances"]
    assert "a_only" not in {i["instance_id"] for i in listed_b}
    a.wait_dag("a_only", timeout=120, interval=0.5)
    assert b.client.get("/dags/a_only").status_code == 404
    assert not list(teams["b"].home.constructed.rglob("instance__a_only.py"))


def test_cli_up_prints_where_and_who_without_the_password_of_the_database(
    teams: dict[str, Any],
) -> None:
    """Issue 11: mlwf instance up prints URL, credentials, home and the database with its password masked."""
    text = "".join(teams["output_b"])
    assert f"Airflow is ready at {teams['b'].url}" in text
    assert f"Password: {teams['b'].credentials.password}" in text
    assert f"Home:     {teams['b'].home.root}" in text
    assert "Database: mysql+pymysql://root@127.0.0.1:3306/" in text


def test_stopping_one_leaves_the_other_running(teams: dict[str, Any]) -> None:
    """Issue 11: stopping team A's instance leaves team B healthy (status exit 0) and running DAGs; status of A exits 3."""
    teams["a"].stop()
    assert _mlwf("instance", "status", str(teams["spec_a"])).returncode == 3
    status = _mlwf("instance", "status", str(teams["spec_b"]))
    assert status.returncode == 0, status.stdout + status.stderr
    for component in ("api-server", "scheduler", "dag-processor", "triggerer"):
        assert f"{component}" in status.stdout
    assert "UNHEALTHY" not in status.stdout
    b = AirflowApi.for_instance(teams["b"])
    assert b.wait_run("only_b", b.trigger("only_b"), timeout=300) == "success"


def test_down_stops_the_running_up(teams: dict[str, Any]) -> None:
    """Issue 11: mlwf instance down stops team B's running `mlwf instance up` (exit 0), after which status exits 3."""
    started = time.monotonic()
    down = _mlwf("instance", "down", str(teams["spec_b"]))
    assert down.returncode == 0, down.stdout + down.stderr
    assert teams["up_b"].wait(timeout=30) == 0
    print(f"\ntiming mlwf instance down: {time.monotonic() - started:.1f} s")
    assert _mlwf("instance", "status", str(teams["spec_b"])).returncode == 3
