"""The auth manager a spec decides: SimpleAuthManager without ldap, mlwf-auth with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlwf_auth import AccessPolicy, DagFacts
from mlwf_instance._auth import MLWF_AUTH_MANAGER, access_policy, auth_options
from mlwf_instance._render import render
from mlwf_instance._render_model import RenderError
from mlwf_instance._spec import parse_spec, rebase_spec

LDAP = {"url": "ldaps://ldap.example.com", "user_base": "ou=p,dc=x", "group_base": "ou=g,dc=x"}
GROUPS = {"admin": ["platform"], "users": ["recsys"], "viewers": ["analytics"]}


def test_without_ldap_nothing_changes() -> None:
    """The laptop instance keeps SimpleAuthManager: no [mlwf_auth] options."""
    assert auth_options(parse_spec({"name": "ab"}), bind_password=None) == {}


def test_default_rules_open_every_dag_to_users_and_viewers() -> None:
    """Issue 13: without dag_rules, users read, run and edit every DAG; viewers read; nobody else anything."""
    spec = parse_spec({"name": "ab", "groups": GROUPS, "ldap": LDAP})
    policy = AccessPolicy.from_config(access_policy(spec))
    dag = DagFacts("any_dag")
    assert policy.is_allowed({"recsys"}, "run", dag) and policy.is_allowed({"recsys"}, "edit", dag)
    assert not policy.is_allowed({"recsys"}, "delete", dag)
    assert policy.is_allowed({"analytics"}, "read", dag)
    assert not policy.is_allowed({"analytics"}, "run", dag)
    assert not policy.is_allowed({"guests"}, "read", dag)
    assert policy.role({"platform"}) == "admin"


def test_options_name_the_directory_the_rules_and_the_keytab(tmp_path: Path) -> None:
    """Issue 13: the options mlwf-auth reads, from the spec; files only where the target has them."""
    spec = rebase_spec(
        parse_spec(
            {
                "name": "ab",
                "groups": GROUPS,
                "ldap": {**LDAP, "bind_dn": "cn=svc", "start_tls": True, "group_style": "member"},
                "kerberos": {
                    "principal": "airflow/h.example.com@EXAMPLE.COM",
                    "keytab": {"file": "airflow.keytab"},
                    "http_keytab": {"file": "http.keytab"},
                },
                "dag_rules": [{"groups": ["recsys"], "tags": ["recsys"], "actions": ["read"]}],
            }
        ),
        tmp_path,
    )
    options = auth_options(spec, bind_password="s3cret")
    assert options["core"] == {"auth_manager": MLWF_AUTH_MANAGER}
    mine = options["mlwf_auth"]
    assert json.loads(mine["policy"])["rules"] == [
        {"groups": ["recsys"], "tags": ["recsys"], "actions": ["read"]}
    ]
    assert mine["ldap_bind_password"] == "s3cret" and mine["ldap_start_tls"] == "True"
    assert mine["ldap_group_style"] == "member" and mine["ldap_bind_dn"] == "cn=svc"
    assert mine["keytab"] == str(tmp_path / "http.keytab") and mine["realms"] == "EXAMPLE.COM"
    assert "keytab" not in auth_options(spec, bind_password=None, files=False)["mlwf_auth"]
    with pytest.raises(RenderError, match=r"^kerberos\.http_keytab: not supported by the render"):
        render(spec, "kubernetes")


def test_rendered_configuration_runs_mlwf_auth_without_the_password(tmp_path: Path) -> None:
    """Issue 13: a rendered ldap instance runs MlwfAuthManager; the bind password comes from a Secret."""
    spec = parse_spec(
        {
            "name": "ab",
            "database": {"url": "postgresql://ab@db.example.com/ab"},
            "groups": GROUPS,
            "ldap": {**LDAP, "bind_dn": "cn=svc", "bind_password": "pw-never-rendered"},
        }
    )
    files = {f.path: f.content for f in render(spec, "kubernetes")}
    text = "\n".join(files.values())
    assert MLWF_AUTH_MANAGER in text and "pw-never-rendered" not in text
    assert "AIRFLOW__MLWF_AUTH__LDAP_BIND_PASSWORD" in text and "ab-ldap-bind-password" in text
    assert "admin-password" not in text
