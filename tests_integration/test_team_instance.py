"""A team's instance from a spec: PostgreSQL, CeleryExecutor on the database broker, 2 workers.

One instance for the module, in its own throwaway database, home and port (≈1.1 GiB; the
MariaDB twin, ``test_team_instance_mariadb.py``, runs the same tests on its own). On it, the
three example workloads run: ``ml_pipeline``, the ``tuning_iris`` tuning and a constructor
instance created through the API. Then the whole instance is stopped and started again on the
same database and home, and the instance, the tuning records and the run history are intact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mlwf_instance import Instance, load_spec
from mlwf_testsupport import (
    AirflowApi,
    assert_no_leftover_processes,
    free_port,
    throwaway_database,
)
from mlwf_tuning import ExperimentState, SqlExperimentStore

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "examples" / "dags"
CONSTRUCTORS = "/mlwf/constructors"
#: Measured durations, printed at the end of the module (pytest -s) and asserted nowhere.
TIMINGS: dict[str, float] = {}


def load_records(store_url: str, tuning_id: str) -> list[Any]:
    """Return a tuning's experiment records, closing the store's connections afterwards."""
    store = SqlExperimentStore(store_url)
    try:
        return list(store.load(tuning_id))
    finally:
        store.engine.dispose()  # the database is dropped at the end: leave no pooled connection


@dataclass
class Team:
    """A running team instance and what the tests learn about it."""

    kind: str
    spec_path: Path
    home: Path
    store_url: str
    instance: Instance
    api: AirflowApi
    runs: dict[str, str] = field(default_factory=dict)

    def restart(self) -> None:
        """Stop every component and start a new Instance on the same spec, database and home."""
        self.api.close()
        self.instance.stop()
        started = time.monotonic()
        self.instance = Instance(load_spec(self.spec_path), home=self.home)
        self.instance.start()
        self.instance.wait_healthy(timeout=600)
        TIMINGS[f"{self.kind}: restart to healthy"] = time.monotonic() - started
        self.api = AirflowApi.for_instance(self.instance, timeout=60)


def _write_spec(root: Path, kind: str, url: str) -> Path:
    """Write the team's spec file (about ten lines, as a team would) and return its path."""
    server_url = url.replace("+psycopg", "").replace("+pymysql", "")
    spec = {
        "name": f"team-{kind}",
        "database": {"url": server_url},
        "executor": "celery",
        "celery": {"workers": 2, "concurrency": 2},
        "dag_folders": [str(DAGS)],
        "api": {"port": free_port()},
        "airflow_config": {
            "mlwf_constructors": {"bundle_modules": "example_constructors"},
            # Celery workers may run on several hosts: the tuning store is a shared database.
            "mlwf_tuning": {"store_url": url},
            "dag_processor": {"refresh_interval": "10"},
        },
    }
    path = root / f"team-{kind}.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


def run_team(kind: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """Run a team instance on a throwaway ``kind`` database for one module; stop it afterwards."""
    root = tmp_path_factory.mktemp(f"team-{kind}")
    with throwaway_database(kind, "team_instance") as url:
        spec_path = _write_spec(root, kind, url)
        home = root / "home"
        started = time.monotonic()
        state = Team(kind, spec_path, home, url, Instance(load_spec(spec_path), home=home), None)  # type: ignore[arg-type]
        state.instance.start()
        try:
            state.instance.wait_healthy(timeout=600)
            TIMINGS[f"{kind}: cold start to healthy"] = time.monotonic() - started
            state.api = AirflowApi.for_instance(state.instance, timeout=60)
            yield state
        finally:
            if state.api is not None:
                state.api.close()
            state.instance.stop()  # the instance of the last restart
        assert_no_leftover_processes(str(home))
    print("\n".join(f"timing {name}: {seconds:.1f} s" for name, seconds in TIMINGS.items()))


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    yield from run_team("postgresql", tmp_path_factory)


def test_workers_are_components_and_answer(team: Team) -> None:
    """Issue 11: the instance runs 2 Celery workers as components that logged ready, on the spec's database broker."""
    assert team.instance.components[-2:] == ("worker-1", "worker-2")
    assert team.instance.unready_workers() == []
    options = team.instance.config.airflow_options(
        {"api_secret_key": "", "jwt_secret": "", "fernet_key": ""}
    )
    assert options["core"]["executor"] == "CeleryExecutor"
    assert options["celery"]["broker_url"].startswith("sqla+")
    for name in ("worker-1", "worker-2"):
        assert f"{name}@" in team.instance.home.log_file(name).read_text()


def test_ml_pipeline_runs_on_celery(team: Team) -> None:
    """Issue 11: the example ml_pipeline (train → validate → serve → load-test → record) succeeds on the Celery workers."""
    started = time.monotonic()
    team.api.unpause("ml_pipeline", timeout=300)
    run_id = team.api.trigger("ml_pipeline", unpause=False)
    state = team.api.wait_run("ml_pipeline", run_id, timeout=600, interval=2)
    assert state == "success", team.api.task_states("ml_pipeline", run_id)
    TIMINGS[f"{team.kind}: ml_pipeline run"] = time.monotonic() - started
    tasks = team.api.task_instances("ml_pipeline", run_id)
    assert {ti["queue"] for ti in tasks} == {"default"}
    assert {ti["executor"] or "CeleryExecutor" for ti in tasks} == {"CeleryExecutor"}
    result = team.api.xcom("ml_pipeline", run_id, "load_test", deserialize=True)
    result = json.loads(result) if isinstance(result, str) else result
    assert result["errors"] == 0 and result["requests"] == 150
    team.runs["ml_pipeline"] = run_id


def test_tuning_iris_runs_on_celery(team: Team) -> None:
    """Issue 11: the tuning_iris Bayesian tuning (8 experiments, 2 at a time) succeeds and records every experiment in the shared store."""
    started = time.monotonic()
    team.api.unpause("tuning_iris__experiments", timeout=300)
    run_id = team.api.trigger("tuning_iris", unpause=True)
    state = team.api.wait_run("tuning_iris", run_id, timeout=900, interval=2)
    assert state == "success", team.api.task_states("tuning_iris", run_id)
    TIMINGS[f"{team.kind}: tuning_iris run"] = time.monotonic() - started
    records = load_records(team.store_url, f"tuning_iris/{run_id}")
    assert len(records) == 8
    assert sum(r.state == ExperimentState.SUCCEEDED for r in records) >= 7
    result = team.api.xcom("tuning_iris", run_id, "report", "tuning_result")
    assert result["best_params"]["max_iter"] in (50, 200, 1000)
    team.runs["tuning_iris"] = run_id


def test_constructor_instance_created_through_the_api_runs(team: Team) -> None:
    """Issue 11: a constructor instance created with POST /mlwf/constructors/instances becomes a DAG that runs on the workers."""
    ctor = team.api.client_for(CONSTRUCTORS)
    body = {"instance_id": "team_iris", "constructor": "train_evaluate", "values": {"epochs": 20}}
    response = ctor.post("/instances", json=body)
    assert response.status_code == 201, response.text
    team.api.wait_dag("team_iris", timeout=120, interval=0.5)
    run_id = team.api.trigger("team_iris")
    assert team.api.wait_run("team_iris", run_id, timeout=300) == "success"
    generated = team.home / "constructed" / "mlwf_constructed" / "instance__team_iris.py"
    assert generated.is_file()
    team.runs["team_iris"] = run_id


def test_a_killed_worker_is_restarted_and_awaited(team: Team) -> None:
    """Issue 11: kill_component SIGKILLs a worker's tree; restart_component starts it again and wait_healthy waits for its new ready line."""
    killed = team.instance.kill_component("worker-2")
    assert killed and team.instance.killed_components == {"worker-2"}
    team.instance.check_running()  # a killed worker is deliberately down, not "died"
    started = time.monotonic()
    team.instance.restart_component("worker-2")
    assert team.instance.unready_workers() == ["worker-2"]
    team.instance.wait_healthy(timeout=300)
    TIMINGS[f"{team.kind}: worker restart to ready"] = time.monotonic() - started
    assert team.instance.unready_workers() == []
    run_id = team.api.trigger("team_iris")
    assert team.api.wait_run("team_iris", run_id, timeout=300) == "success"


def test_restart_keeps_instances_tunings_and_history(team: Team) -> None:
    """Issue 11: after the whole instance stops and starts again, the constructor instance, tuning records and past runs are intact, and the instance runs again."""
    assert set(team.runs) == {"ml_pipeline", "tuning_iris", "team_iris"}, "earlier tests failed"
    tuning_id = f"tuning_iris/{team.runs['tuning_iris']}"
    before = load_records(team.store_url, tuning_id)
    restart_at = datetime.now(UTC)
    team.restart()
    api = team.api
    for dag_id, run_id in team.runs.items():
        assert api.run_state(dag_id, run_id) == "success", dag_id
    instances = api.client_for(CONSTRUCTORS).get("/instances").json()["instances"]
    assert "team_iris" in {i["instance_id"] for i in instances}
    assert load_records(team.store_url, tuning_id) == before
    api.wait_dag("team_iris", timeout=180, interval=0.5, parsed_since=restart_at)
    run_id = api.trigger("team_iris", {"epochs": 30})
    assert api.wait_run("team_iris", run_id, timeout=300) == "success"
