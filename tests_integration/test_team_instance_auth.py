"""A team instance whose spec names a directory: `mlwf instance up` runs it with mlwf-auth.

Issue 13 (wiring into the instance spec): PostgreSQL, a real slapd and a real MIT KDC; the spec's
``groups`` are the roles, its ``dag_rules`` the access, ``kerberos.http_keytab`` turns on single
sign-on. Users: root (platform, the admins), alice (recsys, rule: recsys_* read and run), vic
(analytics, a viewer: its rule's run on every DAG is capped at read).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mlwf_instance import Instance, MlwfInstanceError, load_spec
from mlwf_testsupport import (
    assert_no_leftover_processes,
    free_port,
    poll,
    require_service,
    throwaway_database,
)
from mlwf_testsupport.kdc import KerberosRealm, kerberos_realm
from mlwf_testsupport.slapd import LdapUser, directory_ldif, slapd_server

SUFFIX = "dc=example,dc=test"
REALM = "EXAMPLE.TEST"
PASSWORDS = {"root": "root-pw-1", "alice": "alice-pw-2", "vic": "vic-pw-3"}
USERS = [
    LdapUser("root", PASSWORDS["root"], 1001, ["platform"]),
    LdapUser("alice", PASSWORDS["alice"], 1002, ["recsys"]),
    LdapUser("vic", PASSWORDS["vic"], 1003, ["analytics"]),
]
DAGS = {"recsys_train": "recsys", "fraud_score": "fraud"}


@dataclass
class Team:
    instance: Instance
    realm: KerberosRealm

    def token(self, user: str) -> str:
        answer = httpx.post(
            f"{self.instance.url}/auth/token",
            json={"username": user, "password": PASSWORDS[user]},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["access_token"])

    def dag_ids(self, token: str) -> set[str]:
        answer = httpx.get(
            f"{self.instance.url}/api/v2/dags",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return {d["dag_id"] for d in answer.json()["dags"]}


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    try:
        import gssapi  # noqa: F401  (mlwf-auth[kerberos])
    except ImportError as err:
        require_service("kerberos", f"gssapi (mlwf-auth[kerberos]) is not installed: {err}")
    root = tmp_path_factory.mktemp("team-auth")
    dags = root / "dags"
    dags.mkdir()
    for dag_id, tag in DAGS.items():
        (dags / f"{dag_id}.py").write_text(
            "from airflow.sdk import DAG, task\n"
            f"with DAG({dag_id!r}, schedule=None, tags=[{tag!r}]) as dag:\n"
            "    @task\n"
            "    def t() -> None: ...\n"
            "    t()\n"
        )
    groups = dict.fromkeys(["platform", "recsys", "analytics"], "groupOfNames")
    with (
        throwaway_database("postgresql", "team_auth") as url,
        slapd_server(root / "slapd", directory_ldif(SUFFIX, USERS, groups), suffix=SUFFIX) as ldap,
        kerberos_realm(REALM) as realm,
    ):
        realm.add_user("alice", PASSWORDS["alice"])
        realm.add_service("HTTP/localhost", root / "http.keytab")
        realm.add_service("airflow/localhost", root / "airflow.keytab")
        (root / "bind-password").write_text(ldap.admin_password)
        (root / "bind-password").chmod(0o600)
        spec = {
            "name": "team-auth",
            "database": {"url": url.replace("+psycopg", "")},
            "groups": {"admin": ["platform"], "users": ["recsys"], "viewers": ["analytics"]},
            "ldap": {
                "url": ldap.url,
                "user_base": f"ou=people,{SUFFIX}",
                "group_base": f"ou=groups,{SUFFIX}",
                "group_style": "member",
                "bind_dn": ldap.admin_dn,
                "bind_password": {"file": "bind-password"},
            },
            "kerberos": {
                "principal": f"airflow/localhost@{REALM}",
                "keytab": {"file": "airflow.keytab"},
                "http_keytab": {"file": "http.keytab"},
            },
            "dag_rules": [
                {"groups": ["recsys"], "dags": ["recsys_*"], "actions": ["read", "run"]},
                # a viewer role caps this at read
                {"groups": ["analytics"], "dags": ["*"], "actions": ["read", "run"]},
            ],
            "dag_folders": ["dags"],
            "api": {"port": free_port()},
        }
        spec_path = root / "team-auth.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        loaded = load_spec(spec_path)
        instance = Instance(loaded, home=root / "home")
        env = {k: v for k, v in os.environ.items()}
        os.environ.update(realm.env)  # the api-server inherits the KDC's krb5.conf
        try:
            instance.start()
            instance.wait_healthy(timeout=600)
            yield Team(instance, realm)
        finally:
            instance.stop()
            os.environ.clear()
            os.environ.update(env)
        assert_no_leftover_processes(str(root / "home"))


def test_directory_users_see_what_the_spec_gives(team: Team) -> None:
    """Issue 13: the spec's groups and dag_rules decide: the admin sees both DAGs, alice recsys_train, the viewer both but may not trigger."""
    admin = team.token("root")
    poll(lambda: team.dag_ids(admin) == set(DAGS) or None, 300, "both DAGs to be parsed")
    assert team.dag_ids(team.token("alice")) == {"recsys_train"}
    viewer = team.token("vic")
    assert team.dag_ids(viewer) == set(DAGS)
    run = httpx.post(
        f"{team.instance.url}/api/v2/dags/recsys_train/dagRuns",
        json={"logical_date": None},
        headers={"Authorization": f"Bearer {viewer}"},
        timeout=30,
    )
    assert run.status_code == 403
    wrong = httpx.post(
        f"{team.instance.url}/auth/token",
        json={"username": "alice", "password": "nope"},
        timeout=30,
    )
    assert wrong.status_code == 401


def test_kerberos_single_sign_on_and_no_generated_password(team: Team, tmp_path: Path) -> None:
    """Issue 13: the http_keytab turns on Negotiate; the instance has no generated admin password."""
    import gssapi

    env = team.realm.kinit("alice", PASSWORDS["alice"], tmp_path / "alice.ccache")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        name = gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service)
        token = gssapi.SecurityContext(name=name, usage="initiate").step()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    answer = httpx.post(
        f"{team.instance.url}/auth/token",
        headers={"Authorization": "Negotiate " + base64.b64encode(token).decode()},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    assert team.dag_ids(answer.json()["access_token"]) == {"recsys_train"}
    assert not team.instance.home.passwords_file.exists()
    with pytest.raises(MlwfInstanceError, match="log in with their directory account"):
        _ = team.instance.credentials
    cfg = team.instance.home.airflow_cfg.read_text()
    assert "mlwf_auth.manager.MlwfAuthManager" in cfg and oct(
        team.instance.home.airflow_cfg.stat().st_mode & 0o777
    ) == oct(0o600)
    page = httpx.get(f"{team.instance.url}/auth/login", timeout=30)
    assert page.status_code == 401 and page.headers["www-authenticate"] == "Negotiate"
