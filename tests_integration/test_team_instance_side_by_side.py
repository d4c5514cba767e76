"""Two team instances from two specs side by side on one machine: own databases, ports and homes.

Team A runs PostgreSQL + Celery (one worker, database broker), team B MariaDB + LocalExecutor;
each has a DAG folder of its own. Neither sees the other's DAGs, runs or constructor instances,
and stopping A leaves B running.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlwf_instance import Instance
from mlwf_instance._spec import load_spec
from mlwf_testsupport import AirflowApi, assert_no_leftover_processes, free_port, throwaway_database

EXAMPLE_CONSTRUCTORS = (
    Path(__file__).resolve().parents[1] / "examples" / "dags" / "example_constructors.py"
)
CONSTRUCTORS = "/mlwf/constructors"

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


@pytest.fixture(scope="module")
def teams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Instance]]:
    root = tmp_path_factory.mktemp("side-by-side")
    with (
        throwaway_database("postgresql", "team_a") as url_a,
        throwaway_database("mariadb", "team_b") as url_b,
    ):
        specs = {
            "a": _team(
                root, "a", url_a, executor="celery", celery={"workers": 1, "concurrency": 2}
            ),
            "b": _team(root, "b", url_b),
        }
        instances = {team: Instance(load_spec(path)) for team, path in specs.items()}
        started = time.monotonic()
        try:
            for instance in instances.values():
                instance.start()
            for instance in instances.values():
                instance.wait_healthy(timeout=600)
            print(f"\ntiming side by side: both healthy after {time.monotonic() - started:.1f} s")
            yield instances
        finally:
            for instance in instances.values():
                instance.stop()
        for instance in instances.values():
            assert_no_leftover_processes(str(instance.home.root))


def test_each_sees_only_its_own_dags_runs_and_instances(teams: dict[str, Instance]) -> None:
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


def test_stopping_one_leaves_the_other_running(teams: dict[str, Instance]) -> None:
    """Issue 11: stopping team A's instance leaves team B's healthy and running DAGs."""
    teams["a"].stop()
    teams["b"].check_running()
    teams["b"].wait_healthy(timeout=60)
    b = AirflowApi.for_instance(teams["b"])
    assert b.wait_run("only_b", b.trigger("only_b"), timeout=300) == "success"
