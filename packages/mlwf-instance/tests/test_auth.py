"""The auth manager a spec decides: SimpleAuthManager without ldap, mlwf-auth with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlwf_auth import AccessPolicy, DagFacts
from mlwf_instance._auth import MLWF_AUTH_MANAGER, access_policy, auth_options
from mlwf_instance._render import render
from mlwf_instance._spec import parse_spec, rebase_spec
from render_support import helm_schema_errors, load_strict

LDAP = {"url": "ldaps://ldap.example.com", "user_base": "ou=p,dc=x", "group_base": "ou=g,dc=x"}
GROUPS = {"admin": ["platform"], "users": ["recsys"], "viewers": ["analytics"]}


def test_without_ldap_nothing_changes() -> None:
    """The laptop instance keeps SimpleAuthManager: no [mlwf_auth] options."""
    assert auth_options(parse_spec({"name": "ab"}), bind_password_file=None) == {}


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
                "ldap": {
                    **LDAP,
                    "url": "ldap://ldap.example.com",
                    "bind_dn": "cn=svc",
                    "bind_password": {"env": "NOT_READ_HERE"},
                    "start_tls": True,
                    "group_style": "member",
                },
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
    options = auth_options(spec, bind_password_file=tmp_path / "pw file")
    assert options["core"] == {"auth_manager": MLWF_AUTH_MANAGER}
    mine = options["mlwf_auth"]
    assert json.loads(mine["policy"])["rules"] == [
        {"groups": ["recsys"], "tags": ["recsys"], "actions": ["read"]}
    ]
    # Never the password itself: a command reading the file (no $-expansion, no env var).
    assert mine["ldap_bind_password_cmd"] == f"cat '{tmp_path / 'pw file'}'"
    assert "ldap_bind_password" not in mine and mine["ldap_start_tls"] == "True"
    assert mine["ldap_group_style"] == "member" and mine["ldap_bind_dn"] == "cn=svc"
    assert mine["keytab"] == str(tmp_path / "http.keytab") and mine["realms"] == "EXAMPLE.COM"
    elsewhere = auth_options(
        spec, bind_password_file="/x", files=False, http_keytab_file="/mnt/http.keytab"
    )["mlwf_auth"]
    assert elsewhere["keytab"] == "/mnt/http.keytab"
    with pytest.raises(ValueError, match=r"kerberos\.http_keytab needs the path"):
        auth_options(spec, bind_password_file="/x", files=False)
    in_file = auth_options(spec, bind_password_file="/x", policy_file="/p.json")["mlwf_auth"]
    assert in_file["policy_file"] == "/p.json" and "policy" not in in_file


def _cluster_spec(tmp_path: Path) -> Any:
    return rebase_spec(
        parse_spec(
            {
                "name": "ab",
                "database": {"url": "postgresql://ab@db.example.com/ab"},
                "executor": "celery",
                "groups": GROUPS,
                "ldap": {**LDAP, "ca_certs_file": "/etc/site/ca.pem"},
                "kerberos": {
                    "principal": "airflow/h.example.com@EXAMPLE.COM",
                    "keytab": {"file": "airflow.keytab"},
                    "http_keytab": {"file": "http.keytab"},
                },
            }
        ),
        tmp_path,
    )


def test_cluster_targets_mount_the_ca_certificates_and_http_keytab_in_the_api_server(
    tmp_path: Path,
) -> None:
    """Issue 13 follow-up: ldap.ca_certs_file and kerberos.http_keytab come from Secrets mounted in the API server only."""
    spec = _cluster_spec(tmp_path)
    files = {f.path: f.content for f in render(spec, "kubernetes")}
    manifests = [
        d
        for name, content in files.items()
        if name.endswith((".yaml", ".yml")) and name != "secrets.example.yaml"
        for d in yaml.safe_load_all(content)
        if isinstance(d, dict)
    ]
    for manifest in manifests:
        load_strict(manifest)  # an unknown or mistyped field fails
    deployments = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Deployment"}
    pods = {  # every workload: Deployments, the workers' StatefulSet, the migration Job
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in manifests
        if "template" in d.get("spec", {})
    }
    assert any(name.startswith("StatefulSet/") for name in pods), sorted(pods)
    mounting = {
        name: sorted(
            v["secret"]["secretName"]
            for v in pod.get("volumes", [])
            if "secret" in v and v["secret"]["secretName"] in ("ab-ldap-ca-certs", "ab-http-keytab")
        )
        for name, pod in pods.items()
    }
    assert mounting.pop("Deployment/ab-api-server") == ["ab-http-keytab", "ab-ldap-ca-certs"]
    assert all(found == [] for found in mounting.values()), mounting
    (api,) = deployments["ab-api-server"]["spec"]["template"]["spec"]["containers"][:1]
    mounts = {m["name"]: m["mountPath"] for m in api["volumeMounts"]}
    config = files["airflow.cfg"] if "airflow.cfg" in files else "\n".join(files.values())
    assert f"ldap_ca_certs_file = {mounts['ldap-ca-certs']}/ca.crt" in config
    assert f"keytab = {mounts['http-keytab']}/http.keytab" in config
    helm_files = {f.path: f.content for f in render(spec, "helm")}
    for text in (*files.values(), *helm_files.values()):  # no path of this machine
        assert "/etc/site/ca.pem" not in text and str(tmp_path / "http.keytab") not in text
    example = files["secrets.example.yaml"]
    assert "--from-file=ca.crt=PATH" in example and "--from-file=http.keytab=PATH" in example

    values = yaml.safe_load({f.path: f.content for f in render(spec, "helm")}["values.yaml"])
    assert helm_schema_errors(values) == []  # the chart's values.schema.json, unknown keys included
    api_server = values["apiServer"]
    by_name = {
        v["name"]: v["secret"]["secretName"] for v in api_server["extraVolumes"] if "secret" in v
    }
    assert by_name["ldap-ca-certs"] == "ab-ldap-ca-certs"
    assert by_name["http-keytab"] == "ab-http-keytab"
    assert {m["name"] for m in api_server["extraVolumeMounts"]} >= {"ldap-ca-certs", "http-keytab"}
    others = [  # the airflow.cfg in "config" names the path; no other pod mounts the Secret
        section
        for section, block in values.items()
        if section != "apiServer" and "ab-http-keytab" in str(block)
    ]
    assert others == []


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
    assert "ldap_bind_password_cmd" in text and "ab-ldap-bind-password" in text
    assert "AIRFLOW__MLWF_AUTH__LDAP_BIND_PASSWORD" not in text
    assert "admin-password" not in text
    # Mounted into the API server's pod only.
    pods = [
        d
        for name, content in files.items()
        if name.endswith((".yaml", ".yml"))
        for d in yaml.safe_load_all(content)
        if isinstance(d, dict) and d.get("kind") == "Deployment"
    ]
    mounting = {
        d["metadata"]["name"]
        for d in pods
        if "ldap-bind-password" in str(d["spec"]["template"]["spec"].get("volumes", []))
    }
    assert mounting == {"ab-api-server"}, mounting


def test_runtime_writes_the_policy_and_password_as_private_files(tmp_path: Path) -> None:
    """``mlwf instance up`` writes the policy and the bind password 0600 into the home."""
    from mlwf_instance._auth import write_auth_files

    spec = parse_spec({"name": "ab", "groups": GROUPS, "ldap": {**LDAP, "bind_dn": "cn=svc"}})
    secret, policy = write_auth_files(spec, tmp_path / "mlwf_auth", "pa$$word")
    assert secret is not None and secret.read_text() == "pa$$word"
    assert policy is not None and json.loads(policy.read_text()) == access_policy(spec)
    assert {oct(p.stat().st_mode & 0o777) for p in (secret, policy)} == {"0o600"}
    assert write_auth_files(parse_spec({"name": "ab"}), tmp_path / "none", None) == (None, None)
