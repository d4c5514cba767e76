"""The tuning HTTP API (``/mlwf/tuning``) in a real ``airflow api-server``, with per-DAG rules.

One server for the module (SQLite metadata, the experiment store in a SQLite file the test
process seeds through ``SqlExperimentStore``). The auth manager (``api_auth.TeamAuthManager``)
hides ``other_*`` DAGs from non-admins, and lets them see ``dagonly_*`` DAGs but not their runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from mlwf_testsupport import airflow_api_server
from mlwf_tuning import (
    Categorical,
    ExperimentRecord,
    ExperimentState,
    FloatRange,
    HyperparameterTuningSpec,
    IntRange,
    SqlExperimentStore,
)
from mlwf_tuning._rounds import tuning_id_of

HERE = Path(__file__).parent
PREFIX = "/mlwf/tuning"
USERS = {"admin": "admin", "alice": "user"}
DAGS = """
import datetime
from airflow.sdk import DAG
for dag_id in ["team_tuning", "other_tuning", "dagonly_tuning", "quiet_tuning"]:
    globals()[dag_id] = DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1))
"""
SPEC = HyperparameterTuningSpec(
    hyperparameters={
        "lr": FloatRange(1e-4, 1e-1, log=True),
        "depth": IntRange(1, 8),
        "kernel": Categorical(["rbf", "linear"]),
    },
    metric="loss",
    direction="minimize",
    method="random",
    n_experiments=4,
)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LONG_RUN = "manual__" + "x" * 240  # its tuning id is cut to 250 characters and hashed


def _records() -> list[ExperimentRecord]:
    def done(index: int, loss: float) -> ExperimentRecord:
        return ExperimentRecord(
            index=index,
            params={"lr": 0.01 * (index + 1), "depth": index + 1, "kernel": "rbf"},
            state=ExperimentState.SUCCEEDED,
            metrics={"loss": loss, "accuracy": 1 - loss},
            intermediate={1: loss + 0.2, 2: loss + 0.1},
            started=T0 + timedelta(minutes=index),
            finished=T0 + timedelta(minutes=index, seconds=30),
        )

    return [
        done(0, 0.5),
        done(1, 0.25),
        ExperimentRecord(
            index=2,
            params={"lr": 0.05, "depth": 3, "kernel": "linear"},
            state=ExperimentState.FAILED,
            started=T0,
            finished=T0 + timedelta(seconds=5),
            error="trainer exited with code 1",
        ),
        ExperimentRecord(index=3, params={"lr": 0.07, "depth": 4, "kernel": "rbf"}),
    ]


def _seed(store: SqlExperimentStore) -> dict[str, str]:
    ids = {
        "team": tuning_id_of("team_tuning", "manual__1"),
        "team2": tuning_id_of("team_tuning", "manual__2"),
        "long": tuning_id_of("team_tuning", LONG_RUN),
        "other": tuning_id_of("other_tuning", "manual__1"),
        "dagonly": tuning_id_of("dagonly_tuning", "manual__1"),
        "gone": tuning_id_of("deleted_dag", "manual__1"),  # its DAG is not in Airflow
    }
    for tuning_id in ids.values():
        store.open_tuning(tuning_id, SPEC.plan_json())
        store.save(tuning_id, _records())
    # A tuning whose rows this version cannot read (damaged, or written by a newer version): a
    # state it does not know, metrics that are not JSON, a NaN metric, a hyperparameter
    # declared in a form it does not know.
    ids["damaged"] = tuning_id_of("team_tuning", "manual__damaged")
    spec = json.loads(SPEC.plan_json())
    spec["hyperparameters"]["lr"] = {"kind": "float", "low": "not a number"}
    store.open_tuning(ids["damaged"], json.dumps(spec))
    store.save(ids["damaged"], _records())
    experiments = sa.table("mlwf_tuning_experiments", sa.column("tuning_id"),
                           sa.column("experiment_index"), sa.column("state"), sa.column("metrics"))  # fmt: skip
    with store.engine.begin() as conn:
        where = experiments.c.tuning_id == ids["damaged"]
        for index, values in ((0, {"metrics": '{"loss": NaN}'}), (2, {"state": "cancelled"}),
                              (3, {"metrics": "{bad"})):  # fmt: skip
            conn.execute(
                experiments.update()
                .where(where, experiments.c.experiment_index == index)
                .values(**values)
            )
    return ids


class Server:
    """The running server and its users' tokens."""

    def __init__(self, url: str, tokens: dict[str, str], ids: dict[str, str]) -> None:
        self.url, self.tokens, self.ids = url, tokens, ids

    def get(self, user: str | None, path: str, **params: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.get(f"{self.url}{PREFIX}{path}", headers=headers, params=params, timeout=60)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tuning-api")
    home, dags = root / "home", root / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / "tunings.py").write_text(DAGS)
    (root / "passwords.json").write_text('{"admin": "pw-admin", "alice": "pw-alice"}')
    store_url = f"sqlite:///{root / 'store.db'}"
    ids = _seed(SqlExperimentStore(store_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__CORE__AUTH_MANAGER": "api_auth.TeamAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{name}:{role}" for name, role in USERS.items()
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "passwords.json"),
            "AIRFLOW__API_AUTH__JWT_SECRET": "tuning-api-tests-0123456789abcdef0123456789",
            "AIRFLOW__API__SECRET_KEY": "tuning-api-tests",
            "AIRFLOW__MLWF_TUNING__STORE_URL": store_url,
            "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
        }
    )
    for args in (("db", "migrate"), ("dags", "reserialize")):
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, timeout=600
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
    with airflow_api_server(env, root / "server.log") as url:
        tokens = {}
        for name in USERS:
            answer = httpx.post(
                f"{url}/auth/token", json={"username": name, "password": f"pw-{name}"}, timeout=60
            )
            assert answer.status_code == 201, answer.text
            tokens[name] = answer.json()["access_token"]
        yield Server(url, tokens, ids)


def test_the_list_holds_only_tunings_whose_dag_runs_the_user_may_read(server: Server) -> None:
    alice = server.get("alice", "/tunings").json()
    assert {t["tuning_id"] for t in alice["tunings"]} == {
        server.ids["team"],
        server.ids["team2"],
        server.ids["long"],
        server.ids["damaged"],
    }
    assert alice["total_entries"] == 4
    assert "other_tuning" not in str(alice) and "dagonly_tuning" not in str(alice)
    admin = server.get("admin", "/tunings").json()
    # Every tuning whose DAG Airflow knows; "deleted_dag" is in the store only.
    assert admin["total_entries"] == 6
    assert "deleted_dag" not in str(admin)
    # Asking for a hidden DAG's tunings by name gives what an unknown DAG gives: nothing.
    for dag_id in ("other_tuning", "dagonly_tuning", "no_such_dag"):
        assert server.get("alice", "/tunings", dag_id=dag_id).json() == {
            "tunings": [],
            "total_entries": 0,
        }


def test_a_summary_tells_the_state_and_the_best_experiment(server: Server) -> None:
    page = server.get("alice", "/tunings", dag_id="team_tuning", limit=50).json()
    summary = next(t for t in page["tunings"] if t["tuning_id"] == server.ids["team"])
    assert summary == {
        "tuning_id": "team_tuning/manual__1",
        "dag_id": "team_tuning",
        "run_id": "manual__1",
        "created": summary["created"],
        "metric": "loss",
        "direction": "minimize",
        "method": "random",
        "n_experiments": 4,
        "states": {"succeeded": 2, "failed": 1, "planned": 1},
        "best_index": 1,
        "best_value": 0.25,
        "run_state": None,  # Airflow has no such run
        "problem": None,
    }
    cut = next(t for t in page["tunings"] if t["tuning_id"] == server.ids["long"])
    assert len(cut["tuning_id"]) == 250 and cut["dag_id"] == "team_tuning"
    assert cut["run_id"] is None  # the id was cut: the run is not named by it


def test_pages_are_newest_first_and_bounded(server: Server) -> None:
    whole = [t["tuning_id"] for t in server.get("alice", "/tunings").json()["tunings"]]
    one = server.get("alice", "/tunings", limit=1, offset=1).json()
    assert [t["tuning_id"] for t in one["tunings"]] == whole[1:2]
    assert one["total_entries"] == 4
    for params in ({"limit": 0}, {"limit": 51}, {"offset": -1}, {"dag_id": "d" * 251}):
        answer = server.get("alice", "/tunings", **params)
        assert answer.status_code == 422, (params, answer.text)
        assert next(iter(params)) in str(answer.json()["detail"])


def test_a_tuning_holds_its_space_and_every_experiment(server: Server) -> None:
    answer = server.get("alice", "/tunings/team_tuning/manual__1")
    assert answer.status_code == 200, answer.text
    tuning = answer.json()
    assert [h["name"] for h in tuning["hyperparameters"]] == ["depth", "kernel", "lr"]
    lr = tuning["hyperparameters"][2]
    assert (lr["kind"], lr["low"], lr["high"], lr["log"]) == ("float", 1e-4, 1e-1, True)
    assert tuning["hyperparameters"][1]["choices"] == ["rbf", "linear"]
    experiments = tuning["experiments"]
    assert [e["index"] for e in experiments] == [0, 1, 2, 3]
    assert experiments[1]["metrics"] == {"loss": 0.25, "accuracy": 0.75}
    assert experiments[1]["intermediate"] == [[1, 0.45], [2, 0.35]]
    assert experiments[1]["duration_s"] == 30.0
    assert experiments[2]["error"] == "trainer exited with code 1"
    assert experiments[3]["state"] == "planned" and experiments[3]["started"] is None
    assert tuning["best_index"] == 1
    # The long run id is found by its full id, though the store keeps a cut one.
    long = server.get("alice", f"/tunings/team_tuning/{LONG_RUN}")
    assert long.status_code == 200 and long.json()["tuning_id"] == server.ids["long"]


def test_rows_this_version_cannot_read_are_named_not_a_500(server: Server) -> None:
    listed = server.get("alice", "/tunings", dag_id="team_tuning")
    assert listed.status_code == 200, listed.text
    damaged = next(t for t in listed.json()["tunings"] if t["tuning_id"] == server.ids["damaged"])
    assert damaged["states"] == {"succeeded": 2, "cancelled": 1, "planned": 1}
    assert damaged["problem"] == "1 experiment(s) have metrics that cannot be read"
    assert (damaged["best_index"], damaged["best_value"]) == (1, 0.25)  # NaN is no best
    detail = server.get("alice", "/tunings/team_tuning/manual__damaged")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["experiments"] == [] and body["problem"].startswith(
        "the experiments cannot be read"
    )
    # The hyperparameter this version cannot read is left out; the others are shown.
    assert [h["name"] for h in body["hyperparameters"]] == ["depth", "kernel"]


def test_a_tuning_of_a_dag_airflow_does_not_know_is_shown_to_nobody(server: Server) -> None:
    missing = server.get("admin", "/tunings/team_tuning/manual__404")
    gone = server.get("admin", "/tunings/deleted_dag/manual__1")
    assert (gone.status_code, gone.json()) == (404, missing.json())


def test_a_tuning_the_user_may_not_read_answers_as_a_missing_one(server: Server) -> None:
    missing = server.get("alice", "/tunings/team_tuning/manual__404")
    assert missing.status_code == 404
    for path in ("/tunings/other_tuning/manual__1", "/tunings/dagonly_tuning/manual__1"):
        refused = server.get("alice", path)
        assert (refused.status_code, refused.json()) == (404, missing.json()), path
        assert server.get("admin", path).status_code == 200


def test_every_route_needs_a_signed_in_user(server: Server) -> None:
    for path in ("/tunings", "/tunings/team_tuning/manual__1", "/openapi.json", "/docs"):
        assert server.get(None, path).status_code == 401, path
        assert server.get("alice", path).status_code == 200, path


def test_the_openapi_document_is_typed(server: Server) -> None:
    document = server.get("alice", "/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert {"TuningList", "TuningSummary", "TuningDetail", "ExperimentOut"} <= set(schemas)
    detail = document["paths"]["/tunings/{dag_id}/{run_id}"]["get"]["responses"]
    assert detail["200"]["content"]["application/json"]["schema"]["$ref"].endswith("TuningDetail")
    # A bad parameter answers FastAPI's validation error (a list of problems), as documented.
    invalid = document["paths"]["/tunings"]["get"]["responses"]["422"]
    assert invalid["content"]["application/json"]["schema"]["$ref"].endswith("HTTPValidationError")
