"""The constructors API's checks on a real Airflow API server (see conftest): who may do what, CSRF, docs."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ApiServer


def _create(client: httpx.Client, instance_id: str, **values: Any) -> httpx.Response:
    return client.post(
        "/instances",
        json={"instance_id": instance_id, "constructor": "related", "values": values},
    )


def _ids(server: ApiServer) -> set[str]:
    with server.client("admin") as admin:
        return {i["instance_id"] for i in admin.get("/instances").json()["instances"]}


# -- item 2: every DAG an instance defines or uses is authorized ------------------------------


def test_create_is_refused_when_a_used_dag_may_not_be_triggered(api_server: ApiServer) -> None:
    """Issue 10 item 2: creating an instance that uses DAG prod_pipeline needs the right to trigger it and read its XComs; without it 403 names the DAG and nothing is stored."""
    with api_server.client("alice") as alice:
        refused = _create(alice, "alice_uses_prod", target="prod_pipeline")
        assert refused.status_code == 403, refused.text
        assert "prod_pipeline" in refused.json()["detail"]
        assert "trigger runs" in refused.json()["detail"]
        assert "alice_uses_prod" not in _ids(api_server)
        allowed = _create(alice, "alice_uses_dev", target="dev_pipeline")
        assert allowed.status_code == 201, allowed.text


def test_create_is_refused_when_a_defined_dag_may_not_be_created(api_server: ApiServer) -> None:
    """Issue 10 item 2: creating an instance whose file defines DAG prod_side needs POST on prod_side; 403 names it, no file is written."""
    with api_server.client("alice") as alice:
        refused = _create(alice, "alice_defines_prod", side="prod_side")
        assert refused.status_code == 403, refused.text
        assert "POST DAG 'prod_side'" in refused.json()["detail"]
    assert not (api_server.dags / "mlwf_constructed" / "instance__alice_defines_prod.py").exists()
    assert "alice_defines_prod" not in _ids(api_server)


def test_update_authorizes_the_dags_of_the_new_values(api_server: ApiServer) -> None:
    """Issue 10 item 2: a PATCH that points an instance at prod_pipeline is refused (403) and leaves the stored values unchanged."""
    with api_server.client("alice") as alice:
        assert _create(alice, "alice_patch", target="dev_pipeline").status_code == 201
        refused = alice.patch(
            "/instances/alice_patch", json={"values": {"target": "prod_pipeline"}}
        )
        assert refused.status_code == 403, refused.text
        assert "prod_pipeline" in refused.json()["detail"]
        refused = alice.patch("/instances/alice_patch", json={"values": {"side": "prod_other"}})
        assert refused.status_code == 403 and "prod_other" in refused.json()["detail"]
        stored = alice.get("/instances/alice_patch").json()["values"]
        assert stored["target"] == "dev_pipeline" and stored["side"] == ""


def test_toggle_and_delete_authorize_the_defined_dags(api_server: ApiServer) -> None:
    """Issue 10 item 2: disable, enable and delete of an instance defining prod_side2 need PUT/DELETE on prod_side2, so alice gets 403 and the instance stays."""
    with api_server.client("admin") as admin:
        assert _create(admin, "admin_made", side="prod_side2").status_code == 201
    path = api_server.dags / "mlwf_constructed" / "instance__admin_made.py"
    with api_server.client("alice") as alice:
        for method, route, action in [
            ("POST", "/instances/admin_made/disable", "PUT"),
            ("POST", "/instances/admin_made/enable", "PUT"),
            ("PATCH", "/instances/admin_made", "PUT"),
            ("DELETE", "/instances/admin_made", "DELETE"),
        ]:
            kwargs: dict[str, Any] = {"json": {"enabled": False}} if method == "PATCH" else {}
            refused = alice.request(method, route, **kwargs)
            assert refused.status_code == 403, (route, refused.text)
            assert f"{action} DAG 'prod_side2'" in refused.json()["detail"]
    assert path.is_file() and "admin_made" in _ids(api_server)


def test_enable_authorizes_the_used_dags(api_server: ApiServer) -> None:
    """Issue 10 item 2: enabling or changing an instance that uses prod_pipeline needs the right to trigger it, while disabling it does not."""
    with api_server.client("admin") as admin:
        created = admin.post(
            "/instances",
            json={
                "instance_id": "team_a_uses_prod",
                "constructor": "related",
                "values": {"target": "prod_pipeline"},
            },
        )
        assert created.status_code == 201, created.text
    with api_server.client("alice") as alice:
        assert alice.post("/instances/team_a_uses_prod/disable").status_code == 200
        refused = alice.post("/instances/team_a_uses_prod/enable")
        assert refused.status_code == 403 and "prod_pipeline" in refused.json()["detail"]
        patched = alice.patch("/instances/team_a_uses_prod", json={"values": {"side": "other"}})
        assert patched.status_code == 403 and "prod_pipeline" in patched.json()["detail"]


def test_defined_dag_ids_must_be_free(api_server: ApiServer) -> None:
    """Issue 10 item 2: a defined DAG id taken by another file's DAG or by another instance is a 409, and so is an instance id another instance defines."""
    with api_server.client("alice") as alice:
        taken = _create(alice, "shadow", side="existing_dag")
        assert taken.status_code == 409, taken.text
        assert "existing_dag" in taken.json()["detail"] and "existing.py" in taken.json()["detail"]
        assert _create(alice, "first").status_code == 201
        clash = _create(alice, "second", side="first")
        assert clash.status_code == 409 and "'first'" in clash.json()["detail"]
        defined = _create(alice, "first__side")
        assert defined.status_code == 409, defined.text
        assert "defined by instance 'first'" in defined.json()["detail"]
        assert _create(alice, "third").status_code == 201
        moved = alice.patch("/instances/third", json={"values": {"side": "existing_dag"}})
        assert moved.status_code == 409, moved.text
    assert {"shadow", "second", "first__side"}.isdisjoint(_ids(api_server))


def test_the_id_of_a_removed_dag_with_history_is_not_free(api_server: ApiServer) -> None:
    """Issue 13 review: a stale DAG of another file keeps its runs and XComs; an instance taking its id (own or defined) would hand them to its owners: 409."""
    db = api_server.root / "home" / "airflow.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE dag SET is_stale = 1 WHERE dag_id = 'existing_dag'")
    try:
        with api_server.client("admin") as admin:
            for answer in (
                _create(admin, "existing_dag"),
                _create(admin, "x", side="existing_dag"),
            ):
                assert answer.status_code == 409, answer.text
                assert "removed DAG whose history Airflow keeps" in answer.json()["detail"]
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE dag SET is_stale = 0 WHERE dag_id = 'existing_dag'")
    assert {"existing_dag", "x"}.isdisjoint(_ids(api_server))


# -- issue 10 review: authorization holds for what is written; unknown DAGs; 409 details -------


def test_enable_racing_a_patch_cannot_enable_an_unauthorized_target(
    api_server: ApiServer, tmp_path: Path
) -> None:
    """Issue 10 item 1: alice's enable held after reading the instance, while her PATCH points it at prod_pipeline and disables it, never leaves it enabled using prod_pipeline."""
    hold = tmp_path / "hold"
    Path(f"{hold}.go").touch()  # the create itself must not wait
    values = {"target": "dev_pipeline", "hold": str(hold)}
    with api_server.client("alice") as alice:
        created = alice.post(
            "/instances",
            json={
                "instance_id": "race_enable",
                "constructor": "related",
                "values": values,
                "enabled": False,
            },
        )
        assert created.status_code == 201, created.text
    Path(f"{hold}.go").unlink()
    Path(f"{hold}.reached").unlink(missing_ok=True)
    answers: dict[str, int] = {}

    def send(name: str, method: str, route: str, **kwargs: Any) -> None:
        with api_server.client("alice") as alice:
            answers[name] = alice.request(method, route, **kwargs).status_code

    enable = threading.Thread(target=send, args=("enable", "POST", "/instances/race_enable/enable"))
    patch = threading.Thread(
        target=send,
        args=("patch", "PATCH", "/instances/race_enable"),
        kwargs={"json": {"values": {"target": "prod_pipeline", "hold": ""}, "enabled": False}},
    )
    enable.start()
    deadline = time.monotonic() + 30
    while not Path(f"{hold}.reached").exists():  # the enable now waits inside related_dags()
        assert time.monotonic() < deadline, "the enable never reached related_dags()"
        time.sleep(0.02)
    patch.start()
    patch.join(timeout=2)  # ample for an unblocked PATCH
    Path(f"{hold}.go").touch()
    enable.join(timeout=60)
    patch.join(timeout=60)
    assert answers.get("enable") in (200, 403) and answers.get("patch") in (200, 403), answers
    with api_server.client("admin") as admin:
        stored = admin.get("/instances/race_enable").json()
    assert not (stored["enabled"] and stored["values"]["target"] == "prod_pipeline"), stored


def test_using_an_unknown_dag_is_refused_like_an_unauthorized_one(api_server: ApiServer) -> None:
    """Issue 10 item 5: with multi_team on, using a DAG Airflow does not know is a 403 worded exactly as for another team's DAG, and nothing is stored."""
    with api_server.client("alice") as alice:
        unknown = _create(alice, "uses_future", target="future_dag")
        other_team = _create(alice, "uses_future", target="team_b_dag")
    assert unknown.status_code == other_team.status_code == 403, (unknown.text, other_team.text)
    detail = unknown.json()["detail"]
    assert "future_dag" in detail
    assert detail.replace("future_dag", "team_b_dag") == other_team.json()["detail"]
    assert "uses_future" not in _ids(api_server)


def test_taken_dag_id_names_its_file_only_to_who_may_read_it(api_server: ApiServer) -> None:
    """Issue 10 item 6: a 409 for a DAG id taken by another team's file names neither that file nor its bundle for alice, who may not read that DAG, and names the file for admin."""
    with api_server.client("alice") as alice:
        defines = _create(alice, "alice_shadow_b", side="team_b_dag")
        own_id = _create(alice, "team_b_dag")
    for response in (defines, own_id):
        assert response.status_code == 409, response.text
        detail = response.json()["detail"]
        assert "team_b_dag" in detail
        assert "team_b.py" not in detail and "team-b-folder" not in detail, detail
    with api_server.client("admin") as admin:
        shown = _create(admin, "admin_shadow_b", side="team_b_dag")
    assert shown.status_code == 409 and "team_b.py" in shown.json()["detail"], shown.text
    assert {"alice_shadow_b", "team_b_dag", "admin_shadow_b"}.isdisjoint(_ids(api_server))


# -- item 8: the team of the DAG is passed to the auth manager ---------------------------------


def test_user_of_another_team_cannot_change_an_instance(api_server: ApiServer) -> None:
    """Issue 10 item 8: with multi_team on, carol (team_b) gets 403 changing, disabling, deleting or reading team_a's instance, alice (team_a) may change it."""
    with api_server.client("admin") as admin:
        assert _create(admin, "team_a_job").status_code == 201
    with api_server.client("carol") as carol:
        assert (
            carol.patch("/instances/team_a_job", json={"values": {"side": "x"}}).status_code == 403
        )
        assert carol.post("/instances/team_a_job/disable").status_code == 403
        assert carol.delete("/instances/team_a_job").status_code == 403
        assert carol.get("/instances/team_a_job").status_code == 403
        assert "team_a_job" not in {
            i["instance_id"] for i in carol.get("/instances").json()["instances"]
        }
        assert _create(carol, "carol_job").status_code == 403
    with api_server.client("alice") as alice:
        changed = alice.patch("/instances/team_a_job", json={"values": {"side": "team_a_side"}})
        assert changed.status_code == 200, changed.text


# -- every route authenticated, before the body is read -----------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/instances", b"x" * 1_000_000),  # would be 413 once read
        ("POST", "/instances", b'{"instance_id": '),  # would be 422 once parsed
        ("PATCH", "/instances/some_instance", b"[" * 10_000),
    ],
)
def test_anonymous_writes_get_401_before_their_body_is_read(
    api_server: ApiServer, method: str, path: str, body: bytes
) -> None:
    """A write without credentials is answered 401 whatever its body: nothing of it is read or judged."""
    with api_server.client() as anonymous:
        response = anonymous.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 401, response.text


# -- item 3: cross-site request forgery -------------------------------------------------------


def test_cross_site_form_post_cannot_create_an_instance(api_server: ApiServer) -> None:
    """Issue 10 item 3: a cookie-authenticated text/plain form POST from another site is refused (403 naming the origin) and creates nothing."""
    body = '{"instance_id": "csrf_made", "constructor": "related", "values": {}}'
    with api_server.cookie_client("admin", Origin="https://evil.example") as browser:
        refused = browser.post("/instances", content=body, headers={"Content-Type": "text/plain"})
        assert refused.status_code == 403, refused.text
        assert "https://evil.example" in refused.json()["detail"]
    same_site = {"Origin": api_server.url}
    with api_server.cookie_client("admin", **same_site) as browser:
        plain = browser.post("/instances", content=body, headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415, plain.text
    assert "csrf_made" not in _ids(api_server)


def test_cross_site_bodyless_disable_is_refused(api_server: ApiServer) -> None:
    """Issue 10 item 3: a body-less cookie POST to /disable from a foreign Origin, or without JSON, is refused and the DAG file stays."""
    with api_server.client("admin") as admin:
        assert _create(admin, "csrf_target").status_code == 201
    path = api_server.dags / "mlwf_constructed" / "instance__csrf_target.py"
    with api_server.cookie_client("admin", Origin="http://evil.example:8080") as browser:
        refused = browser.post("/instances/csrf_target/disable")
        assert refused.status_code == 403 and "evil.example" in refused.json()["detail"]
        assert browser.delete("/instances/csrf_target").status_code == 403
    with api_server.cookie_client("admin", Referer="http://evil.example/page") as browser:
        assert browser.post("/instances/csrf_target/disable").status_code == 403
    with api_server.cookie_client("admin") as browser:  # neither Origin nor Referer
        assert browser.post("/instances/csrf_target/disable").status_code == 403
    with api_server.cookie_client("admin", Origin=api_server.url) as browser:
        form = browser.post("/instances/csrf_target/disable")  # what a same-site form sends
        assert form.status_code == 415, form.text
    assert path.is_file()


def test_same_origin_cookie_and_bearer_requests_work(api_server: ApiServer) -> None:
    """Issue 10 item 3: a same-origin cookie request with JSON (Origin or Referer) and a Bearer request without Origin both succeed."""
    json_type = {"Content-Type": "application/json"}
    with api_server.cookie_client("admin", Origin=api_server.url) as browser:
        created = browser.post(
            "/instances", json={"instance_id": "browser_made", "constructor": "related"}
        )
        assert created.status_code == 201, created.text
        assert browser.post("/instances/browser_made/disable", headers=json_type).status_code == 200
    with api_server.cookie_client("admin", Referer=f"{api_server.url}/mlwf") as browser:
        assert browser.post("/instances/browser_made/enable", headers=json_type).status_code == 200
    with api_server.client("admin") as bearer:
        assert bearer.post("/instances/browser_made/disable").status_code == 200
        assert bearer.delete("/instances/browser_made").status_code == 204


def test_bearer_writes_with_a_body_need_json(api_server: ApiServer) -> None:
    """Issue 10 item 3: a Bearer-authenticated POST or PATCH whose body is not declared application/json gets 415."""
    body = '{"instance_id": "bearer_plain", "constructor": "related"}'
    with api_server.client("admin") as bearer:
        for content_type in ["text/plain", "application/x-www-form-urlencoded", None]:
            headers = {"Content-Type": content_type} if content_type else {}
            response = bearer.post("/instances", content=body, headers=headers)
            assert response.status_code == 415, (content_type, response.text)
        patch = bearer.patch(
            "/instances/bearer_plain", content="{}", headers={"Content-Type": "text/plain"}
        )
        assert patch.status_code == 415


# -- item 10: docs routes need credentials ------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_docs_routes_need_credentials(api_server: ApiServer, path: str) -> None:
    """Issue 10 item 10: /docs, /redoc and /openapi.json of the plugin give nothing without credentials."""
    with api_server.client() as anonymous:
        response = anonymous.get(path)
        assert response.status_code in (401, 404), response.text


def test_docs_routes_serve_signed_in_users(api_server: ApiServer) -> None:
    """Issue 10 item 10: a signed-in user gets the OpenAPI schema and the Swagger page pointing at it; /redoc is off."""
    with api_server.client("vic") as viewer:
        schema = viewer.get("/openapi.json")
        assert schema.status_code == 200 and "/instances" in schema.json()["paths"]
        page = viewer.get("/docs")
        assert page.status_code == 200 and "/mlwf/constructors/openapi.json" in page.text
        assert viewer.get("/redoc").status_code == 404
