"""mlwf-auth with mlwf-constructors on a real ``airflow api-server``, a real slapd and a real KDC.

Issue 13: constructor instances belong to their creator's groups, and the constructors plugin's
routes honour the same rules as Airflow's own. Users (slapd): alice and ann (recsys), bob
(fraud), root (platform, the admins); alice and bob share ml-all, which only reads reports. The rules give each team ``edit`` (so read) on its
prefix, never ``run`` or ``delete``: those come only from owning an instance. alice and bob
are also Kerberos principals, for ``mlwf constructors --url``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlwf_testsupport import airflow_api_server, require_service
from mlwf_testsupport.kdc import KerberosRealm, kerberos_realm
from mlwf_testsupport.slapd import LdapUser, directory_ldif, slapd_server

EXAMPLE = Path(__file__).parent.parent / "examples" / "dags" / "example_constructors.py"
CONSTRUCTORS = "/mlwf/constructors"
SUFFIX = "dc=example,dc=test"
PASSWORDS = {"alice": "alice-pw-1", "ann": "ann-pw-2", "bob": "bob-pw-3", "root": "root-pw-4"}
USERS = [
    LdapUser("alice", PASSWORDS["alice"], 1001, ["recsys", "ml-all"]),
    LdapUser("ann", PASSWORDS["ann"], 1002, ["recsys"]),
    LdapUser("bob", PASSWORDS["bob"], 1003, ["fraud", "ml-all"]),
    LdapUser("root", PASSWORDS["root"], 1004, ["platform"]),
]
POLICY = {
    "roles": {"admin": ["platform"], "users": ["recsys", "fraud", "ml-all"]},
    "rules": [
        {"groups": ["recsys"], "dags": ["recsys_*"], "actions": ["edit"]},
        {"groups": ["fraud"], "dags": ["fraud_*"], "actions": ["edit"]},
        # A group alice and bob share, which only reads reports: it owns nothing alice makes.
        {"groups": ["ml-all"], "tags": ["reports"], "actions": ["read"]},
    ],
}


@dataclass
class Server:
    url: str
    env: dict[str, str]
    realm: KerberosRealm

    def client(self, user: str, prefix: str = "") -> httpx.Client:
        """A client of ``user`` (a bearer token from the password login) under ``prefix``."""
        answer = httpx.post(
            f"{self.url}/auth/token",
            json={"username": user, "password": PASSWORDS[user]},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return httpx.Client(
            base_url=f"{self.url}{prefix}",
            headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
            timeout=60,
        )

    def reserialize(self) -> None:
        """Parse the DAG folder into Airflow's database (there is no dag-processor here)."""
        subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "reserialize"],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=300,
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("auth-constructors")
    home, dags = root / "home", root / "home" / "dags"
    dags.mkdir(parents=True)
    shutil.copy(EXAMPLE, dags / EXAMPLE.name)
    policy = root / "policy.json"
    policy.write_text(json.dumps(POLICY))
    groups = dict.fromkeys(["recsys", "fraud", "platform", "ml-all"], "groupOfNames")
    try:
        import gssapi  # noqa: F401  (mlwf-auth[kerberos], for the Negotiate login)
    except ImportError as err:
        require_service("kerberos", f"gssapi (mlwf-auth[kerberos]) is not installed: {err}")
    with (
        slapd_server(root / "slapd", directory_ldif(SUFFIX, USERS, groups), suffix=SUFFIX) as ldap,
        kerberos_realm("EXAMPLE.TEST") as realm,
    ):
        for user in ("alice", "bob"):
            realm.add_user(user, PASSWORDS[user])
        keytab = root / "http.keytab"
        realm.add_service("HTTP/localhost", keytab)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            **realm.env,
            "PYTHONPATH": str(dags),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__AUTH_MANAGER": "mlwf_auth.manager.MlwfAuthManager",
            "AIRFLOW__API__SECRET_KEY": "test-api-secret-key",
            "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-0123456789abcdef",
            "AIRFLOW__MLWF_AUTH__POLICY_FILE": str(policy),
            "AIRFLOW__MLWF_AUTH__LDAP_URL": ldap.url,
            "AIRFLOW__MLWF_AUTH__LDAP_USER_BASE": f"ou=people,{SUFFIX}",
            "AIRFLOW__MLWF_AUTH__DAG_FACTS_TTL": "0",
            "AIRFLOW__MLWF_AUTH__OWNERS_TTL": "0",
            "AIRFLOW__MLWF_AUTH__KEYTAB": str(keytab),
            "AIRFLOW__MLWF_AUTH__REALMS": "EXAMPLE.TEST",
            "AIRFLOW__MLWF_CONSTRUCTORS__BUNDLE_MODULES": "example_constructors",
            "AIRFLOW__MLWF_TUNING__STORE_URL": f"sqlite:///{root / 'tuning.db'}",
        }
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        with airflow_api_server(env, root / "api-server.log") as url:
            yield Server(url, env, realm)


def create(client: httpx.Client, instance_id: str) -> httpx.Response:
    body = {"instance_id": instance_id, "constructor": "train_evaluate", "values": {}}
    return client.post("/instances", json=body)


def test_the_creators_groups_own_an_instance(server: Server) -> None:
    """Issue 13: alice's instance is recsys's: ann may run and delete it (no rule gives that), not an admin's."""
    with (
        server.client("alice", CONSTRUCTORS) as alice,
        server.client("ann", CONSTRUCTORS) as ann,
        server.client("root", CONSTRUCTORS) as root,
        server.client("ann") as ann_api,
        server.client("bob") as bob_api,
    ):
        made = create(alice, "recsys_churn")
        assert made.status_code == 201, made.text
        # Owned by the group through which alice may create it, not by every group of hers.
        assert made.json()["owner"] == "alice" and made.json()["owner_groups"] == ["recsys"]
        legacy = create(root, "recsys_legacy")
        assert legacy.status_code == 201 and legacy.json()["owner_groups"] == ["platform"]
        server.reserialize()
        run = {"logical_date": None}
        # Airflow's own routes: run needs ownership here (the rules give recsys edit only).
        assert ann_api.post("/api/v2/dags/recsys_churn/dagRuns", json=run).status_code == 200
        assert ann_api.post("/api/v2/dags/recsys_legacy/dagRuns", json=run).status_code == 403
        listed = ann_api.get("/api/v2/dags").json()["dags"]
        assert {d["dag_id"] for d in listed} == {"recsys_churn", "recsys_legacy"}
        assert bob_api.get("/api/v2/dags").json()["dags"] == []
        assert bob_api.get("/api/v2/dags/recsys_churn").status_code == 403
        # The plugin's routes: the same answers.
        refused = ann.delete("/instances/recsys_legacy")
        assert refused.status_code == 403
        assert "not authorized to DELETE DAG 'recsys_legacy'" in refused.json()["detail"]
        assert ann.delete("/instances/recsys_churn").status_code == 204
        # Deleted: nobody owns the id any more (ann keeps only what the rules give).
        assert ann_api.post("/api/v2/dags/recsys_churn/dagRuns", json=run).status_code == 403
        assert root.delete("/instances/recsys_legacy").status_code == 204


def _operations(server: Server) -> list[tuple[str, str]]:
    with server.client("root", CONSTRUCTORS) as root:
        document = root.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_plugin_routes_refuse_another_groups_instance_without_telling_it_exists(
    server: Server,
) -> None:
    """Issue 13 sweep of the plugin: bob calls every constructors route on alice's instance.

    No 2xx for a route naming it (the two lists answer 200 without it), nothing in any answer
    about it, and each answer exactly that for an id nobody has (so a refusal is no oracle of
    existence); alice's instance is unchanged after the sweep. bob shares a group with alice.
    """
    operations = _operations(server)
    assert len(operations) >= 8, operations
    with server.client("alice", CONSTRUCTORS) as alice, server.client("bob", CONSTRUCTORS) as bob:
        assert create(alice, "recsys_secret").status_code == 201
        before = alice.get("/instances/recsys_secret").json()
        tried = 0
        for method, path in operations:
            answers = []
            for instance_id in ("recsys_secret", "recsys_nothere"):
                url = path.replace("{instance_id}", instance_id)
                body: dict[str, Any] | None = None
                if method == "POST" and path == "/instances":
                    body = {"instance_id": instance_id, "constructor": "train_evaluate"}
                elif method == "PATCH":
                    body = {"values": {"epochs": 99}, "enabled": False}
                answer = bob.request(method, url, json=body)
                tried += 1
                text = answer.text.replace(instance_id, "<id>")
                answers.append((answer.status_code, text))
                if "{instance_id}" in path or body is not None:
                    assert answer.status_code == 403, (method, url, answer.text)
                else:  # lists: allowed, without alice's instance
                    assert answer.status_code == 200, (method, url, answer.text)
                    assert "recsys_" not in answer.text, (method, url)
            assert answers[0] == answers[1], (method, path, answers)
        assert alice.get("/instances/recsys_secret").json() == before
        assert tried >= 16
        print(f"plugin sweep: {len(operations)} operations x 2 ids = {tried} requests")
        # The stats bridge's metrics name every DAG of the instance: admins only.
        with server.client("bob") as bob_root, server.client("root") as root_root:
            assert bob_root.get("/mlwf-stats-bridge/metrics").status_code == 403
            assert root_root.get("/mlwf-stats-bridge/metrics").status_code == 200
        listed = alice.get("/instances").json()["instances"]
        assert [i["instance_id"] for i in listed] == ["recsys_secret"]
        assert re.fullmatch(r"\d{4}-.*", before["created_at"])
        assert alice.delete("/instances/recsys_secret").status_code == 204


def mlwf(server: Server, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``mlwf constructors --url`` (the host named ``localhost``: the keytab's HTTP/localhost)."""
    url = server.url.replace("127.0.0.1", "localhost")
    return subprocess.run(
        [sys.executable, "-m", "mlwf_instance", "constructors", "--url", url, *args],
        env={k: v for k, v in env.items() if not k.startswith("AIRFLOW")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_manages_a_remote_instance_with_a_kerberos_ticket(
    server: Server, tmp_path: Path
) -> None:
    """Issue 13: `mlwf constructors --url` creates, lists and deletes as the ticket's user; the server's rules decide."""
    base = dict(os.environ)
    alice = server.realm.kinit("alice", PASSWORDS["alice"], tmp_path / "alice.ccache")
    bob = server.realm.kinit("bob", PASSWORDS["bob"], tmp_path / "bob.ccache")
    made = mlwf(
        server,
        {**base, **alice},
        "create",
        "recsys_cli",
        "train_evaluate",
        "--set",
        "learning_rate=0.2",
    )
    assert made.returncode == 0, made.stderr
    assert "created instance 'recsys_cli'" in made.stdout
    assert "(owner alice, groups recsys)" in made.stdout
    listed = mlwf(server, {**base, **alice}, "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    instances = json.loads(listed.stdout)["instances"]
    assert [(i["instance_id"], i["values"]["learning_rate"]) for i in instances] == [
        ("recsys_cli", 0.2)
    ]
    bad = mlwf(server, {**base, **alice}, "create", "recsys_bad", "train_evaluate", "--set",
               "learning_rate=7")  # fmt: skip
    assert bad.returncode == 1 and "answered 422: learning_rate:" in bad.stderr, bad.stderr
    refused = mlwf(server, {**base, **bob}, "delete", "recsys_cli")
    assert refused.returncode == 1, refused.stdout
    assert "answered 403: not authorized to DELETE DAG 'recsys_cli'" in refused.stderr
    assert mlwf(server, {**base, **bob}, "list").stdout.count("recsys_cli") == 0
    no_ticket = {**base, **alice, "KRB5CCNAME": f"FILE:{tmp_path / 'none.ccache'}"}
    anonymous = mlwf(server, no_ticket, "list")
    assert anonymous.returncode == 1 and "Traceback" not in anonymous.stderr
    assert "mlwf constructors: error:" in anonymous.stderr, anonymous.stderr
    spoof = mlwf(
        server, {**base, **alice}, "create", "recsys_x", "train_evaluate", "--owner", "eve"
    )
    assert spoof.returncode == 2 and "records the signed-in user" in spoof.stderr
    sync = mlwf(server, {**base, **alice}, "sync")
    assert sync.returncode == 2 and "an API server syncs at start" in sync.stderr
    gone = mlwf(server, {**base, **alice}, "delete", "recsys_cli")
    assert gone.returncode == 0 and "deleted instance 'recsys_cli'" in gone.stdout, gone.stderr


TEAM_TUNINGS = """
import datetime
from airflow.sdk import DAG
for dag_id in ["recsys_tune", "fraud_tune"]:
    globals()[dag_id] = DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1))
"""


def test_the_pages_show_a_user_only_their_groups_dags(server: Server, tmp_path: Path) -> None:
    """Issue 14: in Chromium, alice's Constructors and Tunings pages hold recsys's only, and a
    fraud tuning's tab answers as no tuning. Last in the module: it adds two DAGs to the folder.
    """
    from mlwf_testsupport import CHROMIUM_ARGS, require_executable
    from mlwf_tuning import (
        ExperimentRecord,
        ExperimentState,
        FloatRange,
        HyperparameterTuningSpec,
        SqlExperimentStore,
    )
    from playwright.sync_api import sync_playwright

    (Path(server.env["AIRFLOW__CORE__DAGS_FOLDER"]) / "team_tunings.py").write_text(TEAM_TUNINGS)
    server.reserialize()
    store = SqlExperimentStore(server.env["AIRFLOW__MLWF_TUNING__STORE_URL"])
    spec = HyperparameterTuningSpec(
        hyperparameters={"lr": FloatRange(0.01, 1.0)}, metric="loss", method="random",
        n_experiments=2,
    )  # fmt: skip
    for dag_id, loss in (("recsys_tune", 0.125), ("fraud_tune", 0.875)):
        store.open_tuning(f"{dag_id}/manual__1", spec.plan_json())
        store.save(f"{dag_id}/manual__1", [
            ExperimentRecord(index=0, params={"lr": 0.5}, state=ExperimentState.SUCCEEDED,
                             metrics={"loss": loss}),
        ])  # fmt: skip
    with server.client("alice", CONSTRUCTORS) as alice, server.client("bob", CONSTRUCTORS) as bob:
        assert create(alice, "recsys_ui").status_code == 201
        assert create(bob, "fraud_ui").status_code == 201
        token = alice.headers["Authorization"].removeprefix("Bearer ")
    chromium = require_executable("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "_token", "value": token, "url": server.url}])
            page = context.new_page()
            page.goto(f"{server.url}/plugin/mlwf-constructors")
            page.locator("[data-instance=recsys_ui]").wait_for(timeout=60_000)
            constructors_text = page.locator("main, body").first.inner_text()
            page.goto(f"{server.url}/plugin/mlwf-tunings")
            page.get_by_text("recsys_tune").first.wait_for(timeout=60_000)
            tunings_text = page.locator("body").inner_text()
            page.goto(f"{server.url}/dags/fraud_tune/runs/manual__1/plugin/mlwf-tuning")
            page.get_by_test_id("not-a-tuning").wait_for(timeout=60_000)
            fraud_tab = page.locator("body").inner_text()
            page.screenshot(path=str(tmp_path / "alice-tunings.png"))
        finally:
            browser.close()
    assert "fraud_ui" not in constructors_text
    assert "recsys_tune" in tunings_text and "0.125" in tunings_text
    assert "fraud_tune" not in tunings_text and "0.875" not in tunings_text
    assert "0.875" not in fraud_tab
