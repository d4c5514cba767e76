"""mlwf-constructors on a real Airflow (api-server, scheduler, dag-processor, triggerer).

One instance serves the module; ``[dag_processor] refresh_interval`` is left at 300 s so that
new instances appearing within seconds proves the plugin's parse requests, not a short refresh.
The last test restarts the components on the same home after deleting every generated file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlwf_instance import EmbeddedInstance, get_api_token
from mlwf_testsupport import AirflowApi, assert_no_leftover_processes, free_port

EXAMPLE = Path(__file__).parent.parent / "examples" / "dags" / "example_constructors.py"
CONSTRUCTORS = "/mlwf/constructors"
HOSTILE = [
    '"); import os; os.system("touch {sentinel}"); ("',
    "'''\nimport os\nos.system('touch {sentinel}')\n'''",
    "{{ 7 * 7 }} {% for x in range(3) %}{{ x }}{% endfor %}",
    '\\"\n\r\t\x00 ünï €',
    "__import__('os').system('touch {sentinel}')",
]


def create(
    ctor: httpx.Client, instance_id: str, values: dict[str, Any] | None = None
) -> httpx.Response:
    """POST an instance of the example constructor ``train_evaluate`` to the plugin."""
    body = {"instance_id": instance_id, "constructor": "train_evaluate", "values": values or {}}
    return ctor.post("/instances", json=body)


def run(api: AirflowApi, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    """Unpause and trigger the DAG; return the final state of the run."""
    return api.wait_run(dag_id, api.trigger(dag_id, conf), timeout=180)


def constructed(env: dict[str, Any]) -> Path:
    """The folder of generated files: in the instance home's bundle, not the DAGs folder."""
    return Path(env["instance"].home.constructed) / "mlwf_constructed"


def make_instance(home: Path, dags: Path, port: int) -> EmbeddedInstance:
    return EmbeddedInstance(
        home,
        dags_folder=dags,
        port=port,
        dag_refresh_interval=300,
        extra_config={
            "mlwf_constructors": {"bundle_modules": "example_constructors"},
            "core": {"simple_auth_manager_users": "admin:admin,viewer:viewer"},
        },
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("constructors")
    dags = root / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLE, dags / EXAMPLE.name)
    state: dict[str, Any] = {"home": root / "home", "dags": dags, "port": free_port()}
    instance = make_instance(state["home"], dags, state["port"])
    with instance:
        state["instance"] = instance
        state["api"] = AirflowApi.for_instance(instance)
        state["ctor"] = state["api"].client_for(CONSTRUCTORS)
        yield state
        state["instance"].stop()
    assert_no_leftover_processes(str(state["home"]))


def test_routes_require_authentication_and_authorization(env: dict[str, Any]) -> None:
    """Without a token every route answers 401; a viewer may list but not create (403)."""
    url = env["instance"].url
    anonymous = httpx.Client(base_url=f"{url}{CONSTRUCTORS}", timeout=30)
    for method, path in [
        ("GET", "/constructors"),
        ("GET", "/instances"),
        ("POST", "/instances"),
        ("GET", "/instances/x"),
        ("PATCH", "/instances/x"),
        ("DELETE", "/instances/x"),
        ("POST", "/instances/x/enable"),
    ]:
        assert anonymous.request(method, path, json={}).status_code == 401, (method, path)
    passwords = json.loads(env["instance"].home.passwords_file.read_text())
    viewer = AirflowApi(url, get_api_token(url, "viewer", passwords["viewer"])).client_for(
        CONSTRUCTORS
    )
    assert viewer.get("/constructors").status_code == 200
    denied = create(viewer, "viewer_made")
    assert denied.status_code == 403, denied.text
    assert env["ctor"].get("/instances/viewer_made").status_code == 404


def test_browser_writes_need_same_origin_and_docs_need_credentials(env: dict[str, Any]) -> None:
    """Issue 10 items 3 and 10: on the real api-server a cross-site cookie write is refused, a same-origin one works, and the plugin's docs routes need credentials."""
    url = env["instance"].url
    token = env["api"].headers["Authorization"].removeprefix("Bearer ")
    anonymous = httpx.Client(base_url=f"{url}{CONSTRUCTORS}", timeout=30)
    for path in ["/docs", "/redoc", "/openapi.json"]:
        assert anonymous.get(path).status_code in (401, 404), path
    body = '{"instance_id": "csrf_made", "constructor": "train_evaluate", "values": {}}'
    evil = httpx.Client(
        base_url=f"{url}{CONSTRUCTORS}",
        cookies={"_token": token},
        headers={"Origin": "https://evil.example"},
        timeout=30,
    )
    form = evil.post("/instances", content=body, headers={"Content-Type": "text/plain"})
    assert form.status_code == 403 and "evil.example" in form.json()["detail"], form.text
    browser = httpx.Client(
        base_url=f"{url}{CONSTRUCTORS}",
        cookies={"_token": token},
        headers={"Origin": url, "Content-Type": "application/json"},
        timeout=30,
    )
    assert browser.post("/instances", content=body).status_code == 201
    assert evil.post("/instances/csrf_made/disable").status_code == 403
    assert browser.post("/instances/csrf_made/disable").json()["enabled"] is False
    assert browser.get("/openapi.json").json()["info"]["title"] == "mlwf-constructors"
    assert browser.delete("/instances/csrf_made").status_code == 204


def test_create_is_visible_quickly_and_runs_with_overrides(env: dict[str, Any]) -> None:
    """A created instance is a DAG within 10 s (refresh_interval is 300 s), with Params, and runs."""
    api: AirflowApi = env["api"]
    ctor: httpx.Client = env["ctor"]
    listed = ctor.get("/constructors").json()["constructors"]
    [example] = [c for c in listed if c["name"] == "train_evaluate"]
    assert example["schema"]["properties"]["epochs"]["minimum"] == 1
    response = create(ctor, "iris_fast", {"learning_rate": 0.3, "epochs": 20})
    assert response.status_code == 201, response.text
    start = time.monotonic()
    api.wait_dag("iris_fast", timeout=30, interval=0.5)
    assert time.monotonic() - start <= 10.0
    params = api.get("/dags/iris_fast/details")["params"]
    assert params["epochs"]["value"] == 20 and params["epochs"]["schema"]["maximum"] == 1000
    bad = api.client.post(
        "/dags/iris_fast/dagRuns", json={"logical_date": None, "conf": {"epochs": 0}}
    )
    assert bad.status_code == 400, bad.text  # the Param's JSON schema guards run-time overrides
    assert run(api, "iris_fast", {"epochs": 30}) == "success"
    # An override that makes evaluation fail proves the run read the overriding params.
    assert run(api, "iris_fast", {"epochs": 1, "learning_rate": 0.0001}) == "failed"


def test_update_disable_enable_delete(env: dict[str, Any]) -> None:
    """PATCH changes values, disable removes the DAG file, enable restores it, delete removes all."""
    ctor: httpx.Client = env["ctor"]
    assert create(ctor, "lifecycle").status_code == 201
    path = constructed(env) / "instance__lifecycle.py"
    assert path.is_file()
    patched = ctor.patch("/instances/lifecycle", json={"values": {"epochs": 7}})
    assert patched.status_code == 200 and patched.json()["values"]["epochs"] == 7
    assert (
        ctor.patch("/instances/lifecycle", json={"values": {"epochs": "7"}}).json()["parameter"]
        == "epochs"
    )
    assert ctor.post("/instances/lifecycle/disable").json()["enabled"] is False
    assert not path.exists()
    assert ctor.post("/instances/lifecycle/enable").json()["enabled"] is True
    assert path.is_file()
    assert ctor.delete("/instances/lifecycle").status_code == 204
    assert not path.exists()
    assert ctor.get("/instances/lifecycle").status_code == 404
    assert ctor.delete("/instances/lifecycle").status_code == 404


def test_hostile_values_stay_data(env: dict[str, Any], tmp_path: Path) -> None:
    """Code, quotes, newlines and Jinja in values are stored verbatim, never run, never in the file."""
    api: AirflowApi = env["api"]
    ctor: httpx.Client = env["ctor"]
    sentinel = tmp_path / "pwned"
    tags = [t.replace("{sentinel}", str(sentinel)) for t in HOSTILE]
    response = create(ctor, "hostile", {"tags": tags})
    assert response.status_code == 201, response.text
    text = (constructed(env) / "instance__hostile.py").read_text()
    assert "touch" not in text and "{{" not in text and "import os" not in text
    api.wait_dag("hostile", timeout=30, interval=0.5)
    assert api.get("/dags/hostile/details")["params"]["tags"]["value"] == tags
    assert run(api, "hostile") == "success"
    assert ctor.get("/instances/hostile").json()["values"]["tags"] == tags
    assert not sentinel.exists()
    rejected = create(ctor, "hostile2", {"dataset": "x'); import os #"})
    assert rejected.status_code == 422 and rejected.json()["parameter"] == "dataset"


def test_hostile_ids_and_payloads_write_nothing(env: dict[str, Any]) -> None:
    """Bad ids, unknown parameters, wrong types and oversized bodies get 4xx and change no file."""
    ctor: httpx.Client = env["ctor"]
    before = sorted(str(p) for p in env["dags"].parent.rglob("*") if "home" not in p.parts)
    stored = ctor.get("/instances").json()["instances"]
    for bad_id in ["../evil", "a/b", "a b", "ünïcode", ".hidden", "x..y", "-x", "a" * 101, "a\n"]:
        response = create(ctor, bad_id)
        assert response.status_code == 422, (bad_id, response.text)
        assert "instance id" in response.json()["detail"]
    unknown = create(ctor, "ok_id", {"epochz": 3})
    assert unknown.status_code == 422 and unknown.json()["parameter"] == "epochz"
    wrong = create(ctor, "ok_id", {"epochs": True})
    assert wrong.status_code == 422 and wrong.json()["parameter"] == "epochs"
    huge = create(ctor, "ok_id", {"tags": ["x" * 4000] * 30})
    assert huge.status_code == 413, huge.text
    missing = ctor.post("/instances", json={"instance_id": "ok_id", "constructor": "nope"})
    assert missing.status_code == 422 and "nope" in missing.json()["detail"]
    assert ctor.get("/instances").json()["instances"] == stored
    after = sorted(str(p) for p in env["dags"].parent.rglob("*") if "home" not in p.parts)
    assert [p for p in after if "__pycache__" not in p] == [
        p for p in before if "__pycache__" not in p
    ]


def test_concurrent_creates_of_one_id_one_wins(env: dict[str, Any]) -> None:
    """Eight threads create the same id at once through the API: exactly one 201, the rest 409."""
    ctor: httpx.Client = env["ctor"]
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def create_race(epochs: int) -> None:
        barrier.wait()
        codes.append(create(ctor, "race", {"epochs": epochs}).status_code)

    threads = [threading.Thread(target=create_race, args=(i + 1,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [201] + [409] * 7
    duplicate = create(ctor, "race")
    assert duplicate.status_code == 409


def test_cli_lists_and_creates_on_the_running_instance(env: dict[str, Any]) -> None:
    """`mlwf constructors create` and `list` work on the instance's Airflow home."""
    home = str(env["instance"].home.airflow_home)
    cmd = [sys.executable, "-m", "mlwf_instance", "constructors", "--airflow-home", home]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    created = subprocess.run(
        [*cmd, "create", "from_cli", "train_evaluate", "--set", "epochs=9"],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env,
    )
    assert created.returncode == 0, created.stderr[-2000:]
    env["api"].wait_dag("from_cli", timeout=30, interval=0.5)
    bad = subprocess.run(
        [*cmd, "create", "../x", "train_evaluate"],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env,
    )
    assert bad.returncode == 1 and "invalid instance id" in bad.stderr
    listed = subprocess.run(
        [*cmd, "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env,
    )
    payload = json.loads(listed.stdout[listed.stdout.index("{") :])
    ids = {i["instance_id"] for i in payload["instances"]}
    assert {"from_cli", "iris_fast", "hostile", "race"} <= ids


def test_restart_recreates_every_instance(env: dict[str, Any]) -> None:
    """After the generated files are deleted and the components restart, every instance is back and runs."""
    expected = {i["instance_id"] for i in env["ctor"].get("/instances").json()["instances"]}
    assert expected >= {"iris_fast", "hostile", "race", "from_cli"}
    env["instance"].stop()
    shutil.rmtree(constructed(env))
    constructed(env).mkdir()
    orphan = constructed(env) / "instance__orphan.py"
    orphan.write_text(
        "# Generated by mlwf-constructors; do not edit (the instance store is the source of truth).\n"
    )
    restarted = make_instance(env["home"], env["dags"], env["port"])
    restart_time = datetime.now(UTC)
    restarted.start()
    env["instance"] = restarted  # the fixture stops it
    restarted.wait_healthy()
    fresh = AirflowApi.for_instance(restarted)
    env["api"], env["ctor"] = fresh, fresh.client_for(CONSTRUCTORS)
    for dag_id in sorted(expected):
        # GET /dags/{id} answers from the DAG table, which survived the restart: wait for a new parse.
        fresh.wait_dag(dag_id, timeout=90, interval=0.5, parsed_since=restart_time)
        assert (constructed(env) / f"instance__{dag_id}.py").is_file()
    assert not orphan.exists()
    # iris_fast, with the conf that succeeded before the restart ("race" is not used: which of the
    # racing creates wins, and so its epochs, is chance, and few epochs fail evaluation).
    assert run(fresh, "iris_fast", {"epochs": 30}) == "success"
