"""AirflowApi against a loopback fake of Airflow's REST API v2 (fake_airflow_api.FakeAirflow)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fake_airflow_api import FakeAirflow
from mlwf_testsupport import AirflowApi, AirflowApiError


@pytest.fixture
def fake() -> Iterator[FakeAirflow]:
    with FakeAirflow() as server:
        yield server


@pytest.fixture
def api(fake: FakeAirflow) -> Iterator[AirflowApi]:
    with AirflowApi.for_instance(fake, timeout=10) as client:
        yield client


def test_for_instance_sends_the_instance_token(fake: FakeAirflow, api: AirflowApi) -> None:
    """for_instance takes .url and .api_token() of any object and sends the token as a bearer."""
    fake.add_dag("d", appears_after=0)
    assert api.get("/dags/d")["dag_id"] == "d"
    assert api.url == fake.url
    assert str(api.client.base_url) == f"{fake.url}/api/v2/"
    assert fake.requests[-1] == ("GET", "/api/v2/dags/d")  # the fake refuses other tokens


def test_non_2xx_raises_naming_method_path_status_and_body(fake: FakeAirflow) -> None:
    """A refused request raises AirflowApiError with method, path and query, status and the body."""
    with AirflowApi(fake.url, "wrong-token") as api, pytest.raises(AirflowApiError) as caught:
        api.get("/dags/d/dagRuns", limit=5)
    error = caught.value
    assert (
        str(error)
        == 'GET /api/v2/dags/d/dagRuns?limit=5 answered 401: {"detail": "Not authenticated"}'
    )
    assert (error.method, error.path, error.status_code) == (
        "GET",
        "/api/v2/dags/d/dagRuns?limit=5",
        401,
    )


def test_error_body_is_cut_to_an_excerpt() -> None:
    """A long error body is quoted up to 1000 characters; the exception keeps all of it."""
    error = AirflowApiError("POST", "/api/v2/x", 500, "e" * 5000)
    assert str(error) == f"POST /api/v2/x answered 500: {'e' * 1000}..."
    assert len(error.body) == 5000
    assert str(AirflowApiError("GET", "/y", 502, "")) == "GET /y answered 502: (empty body)"


def test_not_found_names_the_dag(fake: FakeAirflow, api: AirflowApi) -> None:
    """A 404 from a JSON method raises with Airflow's detail, which names the DAG."""
    with pytest.raises(AirflowApiError, match=r"PATCH /api/v2/dags/nope answered 404: .*`nope`"):
        api.pause("nope")


def test_unpause_waits_until_the_dag_is_parsed(fake: FakeAirflow, api: AirflowApi) -> None:
    """unpause polls GET /dags/{id} through 404s until the DAG exists, then PATCHes is_paused."""
    dag = fake.add_dag("late", appears_after=2)
    api.unpause("late", timeout=10)
    assert dag.is_paused is False
    assert fake.requests == [
        ("GET", "/api/v2/dags/late"),
        ("GET", "/api/v2/dags/late"),
        ("GET", "/api/v2/dags/late"),
        ("PATCH", "/api/v2/dags/late"),
    ]
    assert fake.bodies[-1] == {"is_paused": False}
    api.pause("late")
    assert dag.is_paused is True


def test_wait_dag_times_out_with_the_last_status(fake: FakeAirflow, api: AirflowApi) -> None:
    """A DAG that never appears fails the wait naming it and the last answer (HTTP 404)."""
    with pytest.raises(
        AssertionError, match=r"waiting for DAG ghost \(\d+ checks; last value seen: 'HTTP 404'\)"
    ):
        api.wait_dag("ghost", timeout=0.3, interval=0.1)


def test_wait_dag_fails_at_once_when_unauthorized(fake: FakeAirflow) -> None:
    """A 401 while waiting for a DAG is an error at once, not a wait until the timeout."""
    with AirflowApi(fake.url, "wrong-token") as api, pytest.raises(AirflowApiError, match="401"):
        api.wait_dag("d", timeout=60)
    assert len(fake.requests) == 1


def test_wait_dag_parsed_since_waits_for_a_fresh_parse(fake: FakeAirflow, api: AirflowApi) -> None:
    """With parsed_since, a DAG last parsed before that moment (or stale) is not yet there."""
    dag = fake.add_dag("d", last_parsed_time="2025-01-01T00:00:00Z")
    since = datetime(2025, 6, 1, tzinfo=UTC)
    with pytest.raises(AssertionError, match="DAG d to be parsed after 2025-06-01T00:00:00"):
        api.wait_dag("d", timeout=0.2, interval=0.1, parsed_since=since)
    dag.last_parsed_time, dag.is_stale = "2025-06-02T00:00:00Z", True
    with pytest.raises(AssertionError, match="is_stale=True"):
        api.wait_dag("d", timeout=0.2, interval=0.1, parsed_since=since)
    dag.is_stale = False
    assert (
        api.wait_dag("d", timeout=1, parsed_since=since)["last_parsed_time"]
        == "2025-06-02T00:00:00Z"
    )


def test_trigger_unpauses_and_wait_run_returns_the_final_state(
    fake: FakeAirflow, api: AirflowApi
) -> None:
    """trigger awaits and unpauses the DAG, posts conf; wait_run polls until success or failed."""
    dag = fake.add_dag("d", appears_after=1, reads_to_finish=2, final_state="failed")
    run_id = api.trigger("d", {"epochs": 3})
    assert dag.is_paused is False
    assert fake.bodies[-1] == {"logical_date": None, "conf": {"epochs": 3}}
    assert api.run_state("d", run_id) == "running"
    assert api.wait_run("d", run_id, timeout=10, interval=0.05) == "failed"
    assert api.run("d", run_id)["conf"] == {"epochs": 3}


def test_trigger_without_unpause_only_posts(fake: FakeAirflow, api: AirflowApi) -> None:
    """unpause=False triggers the DAG as it is: one POST, no conf means an empty conf."""
    fake.add_dag("d")
    api.trigger("d", unpause=False)
    assert list(zip((m for m, _ in fake.requests), fake.bodies, strict=True)) == [
        ("POST", {"logical_date": None, "conf": {}})
    ]


def test_wait_run_timeout_names_the_run_and_its_last_state(
    fake: FakeAirflow, api: AirflowApi
) -> None:
    """A run that does not finish in time fails the wait naming run, DAG and its last state."""
    fake.add_dag("slow", reads_to_finish=10_000)
    run_id = api.trigger("slow", unpause=False)
    with pytest.raises(AssertionError) as caught:
        api.wait_run("slow", run_id, timeout=0.3, interval=0.1)
    message = str(caught.value)
    assert message.startswith(f"timed out after 0.3 s waiting for run {run_id} of slow to finish (")
    assert message.endswith("last value seen: 'running')")


def test_runs_reads_every_page_and_filters_by_run_id(fake: FakeAirflow, api: AirflowApi) -> None:
    """runs pages through all runs (the fake caps pages at 3) and filters by prefix and suffix."""
    for i in range(8):
        fake.add_run("exp", f"exp{i:04d}__tune__{'a' if i % 2 else 'b'}")
    fake.add_run("other", "exp0000__tune__a")
    assert len(api.runs("exp")) == 8
    odd = api.runs("exp", run_id_suffix="__tune__a")
    assert [r["dag_run_id"][:7] for r in odd] == ["exp0001", "exp0003", "exp0005", "exp0007"]
    assert [r["dag_run_id"] for r in api.runs("exp", run_id_prefix="exp0002")] == [
        "exp0002__tune__b"
    ]


def test_task_states_are_keyed_by_task_and_map_index(fake: FakeAirflow, api: AirflowApi) -> None:
    """task_states reads every page of task instances, keyed by (task_id, map_index)."""
    fake.task_instances[("d", "r")] = [
        {"task_id": "train", "map_index": -1, "state": "success", "try_number": 2},
        *({"task_id": "fit", "map_index": i, "state": "failed", "try_number": 1} for i in range(4)),
        {"task_id": "report", "map_index": -1, "state": None, "try_number": 0},
    ]
    states = api.task_states("d", "r")
    assert states == {
        ("train", -1): "success",
        **{("fit", i): "failed" for i in range(4)},
        ("report", -1): None,
    }
    assert api.task_instance("d", "r", "train")["try_number"] == 2
    assert api.task_instance("d", "r", "fit", map_index=3)["state"] == "failed"


def test_xcom_by_key_and_map_index(fake: FakeAirflow, api: AirflowApi) -> None:
    """xcom reads return_value by default, another key or map index on request, deserialized on request."""
    fake.xcoms[("d", "r", "t", "return_value", -1)] = {"best": 1}
    fake.xcoms[("d", "r", "t", "score", -1)] = 0.5
    fake.xcoms[("d", "r", "m", "return_value", 2)] = 16
    assert api.xcom("d", "r", "t") == {"best": 1}
    assert api.xcom("d", "r", "t", "score") == 0.5
    assert api.xcom("d", "r", "m", map_index=2) == 16
    assert api.xcom("d", "r", "t", deserialize=True) == '{"best": 1}'
    assert fake.requests[-1][1].endswith("xcomEntries/return_value?deserialize=true")
    with pytest.raises(AirflowApiError, match=r"xcomEntries/missing answered 404: .*`missing`"):
        api.xcom("d", "r", "t", "missing")


def test_task_log_is_the_full_content_as_json_text(fake: FakeAirflow, api: AirflowApi) -> None:
    """task_log asks for the full content of one try and returns it as searchable JSON text."""
    content = [
        {"event": "starting"},
        {"event": "Task failed", "error_detail": [{"exc_type": "Boom"}]},
    ]
    fake.logs[("d", "r", "t", 2, -1)] = content
    fake.logs[("d", "r", "m", 1, 1)] = [{"event": "mapped"}]
    log = api.task_log("d", "r", "t", 2)
    assert log == json.dumps(content) and "Boom" in log
    assert "mapped" in api.task_log("d", "r", "m", map_index=1)


def test_clear_run_posts_the_clear_request(fake: FakeAirflow, api: AirflowApi) -> None:
    """clear_run clears every task instance of the run (not only failed ones, not a dry run)."""
    api.clear_run("d", "r")
    assert fake.requests[-1] == ("POST", "/api/v2/dags/d/clearTaskInstances")
    assert fake.bodies[-1] == {"dry_run": False, "dag_run_id": "r", "only_failed": False}


def test_client_for_another_prefix_carries_the_token(fake: FakeAirflow, api: AirflowApi) -> None:
    """client_for gives a plugin's routes a client with the same token and server."""
    with api.client_for("/mlwf/echo/") as plugin:
        response = plugin.get("/headers")
    assert response.status_code == 200, response.text
    assert fake.requests[-1] == ("GET", "/mlwf/echo/headers")
