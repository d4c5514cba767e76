"""Login and access of an instance: the auth manager its spec's ``ldap`` and ``groups`` decide.

Without ``ldap`` an instance logs in through Airflow's SimpleAuthManager with the ``admin``
password mlwf generates (the laptop instance). With ``ldap`` it runs mlwf-auth's
``MlwfAuthManager``: users log in with their directory account (password form, or Kerberos
single sign-on with ``kerberos.http_keytab``), the spec's ``groups`` are the instance's roles and
``dag_rules`` (default: users read, run and edit every DAG; viewers read) decide who may do
what on which DAG. mlwf writes only configuration here; it imports nothing of mlwf-auth but
its rule model (the spec's ``dag_rules``).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from mlwf_instance._home import _write_private
from mlwf_instance._spec import InstanceSpec

MLWF_AUTH_MANAGER = "mlwf_auth.manager.MlwfAuthManager"


def uses_mlwf_auth(spec: InstanceSpec) -> bool:
    """Return whether the instance logs in through mlwf-auth (its spec names a directory)."""
    return spec.ldap is not None


def access_policy(spec: InstanceSpec) -> dict[str, Any]:
    """Return mlwf-auth's policy document: the spec's groups as roles, its (or the default) rules."""
    groups = spec.groups
    if spec.dag_rules is not None:
        rules = [rule.model_dump(exclude_defaults=True) for rule in spec.dag_rules]
    else:
        rules = []
        if groups.users:
            rules.append(
                {"groups": groups.users, "dags": ["*"], "actions": ["read", "run", "edit"]}
            )
        if groups.viewers:
            rules.append({"groups": groups.viewers, "dags": ["*"], "actions": ["read"]})
    return {
        "roles": {"admin": groups.admin, "users": groups.users, "viewers": groups.viewers},
        "rules": rules,
    }


def auth_options(
    spec: InstanceSpec,
    *,
    bind_password_file: str | Path | None,
    policy_file: str | Path | None = None,
    files: bool = True,
    ca_certs_file: str | None = None,
    http_keytab_file: str | None = None,
) -> dict[str, dict[str, str]]:
    """Return the ``[core] auth_manager`` and ``[mlwf_auth]`` options of ``spec`` (none without ldap).

    The bind password is never an option value: ``ldap_bind_password_cmd`` reads
    ``bind_password_file`` (Airflow would expand ``$NAME`` in an ``AIRFLOW__…`` value, and every
    component would see it). The policy is inline unless ``policy_file`` names where it is
    written (a long policy in an environment variable could exceed the kernel's limit).
    ``files=False`` is for a cluster, where the files the spec names (the CA certificates and
    the HTTP keytab) are not on the machine that renders: the options then name
    ``ca_certs_file`` and ``http_keytab_file``, where the pod mounts them from Secrets.
    """
    ldap = spec.ldap
    if ldap is None:
        return {}
    options = {
        "ldap_url": ldap.url,
        "ldap_user_base": ldap.user_base,
        "ldap_group_base": ldap.group_base,
        "ldap_group_style": ldap.group_style,
    }
    if policy_file is None:
        options["policy"] = policy_text(spec)
    else:
        options["policy_file"] = str(policy_file)
    if ldap.user_filter is not None:
        options["ldap_user_filter"] = ldap.user_filter
    if ldap.bind_dn is not None:
        options["ldap_bind_dn"] = ldap.bind_dn
    if ldap.bind_password is not None:
        if not bind_password_file:
            raise ValueError("ldap.bind_password needs the file it is read from")
        options["ldap_bind_password_cmd"] = shlex.join(["cat", str(bind_password_file)])
    if ldap.start_tls:
        options["ldap_start_tls"] = "True"
    kerberos = spec.kerberos
    if ldap.ca_certs_file is not None:
        ca_certs = str(ldap.ca_certs_file) if files else ca_certs_file
        if not ca_certs:
            raise ValueError("ldap.ca_certs_file needs the path it is mounted at")
        options["ldap_ca_certs_file"] = ca_certs
    if kerberos is not None and kerberos.http_keytab is not None:
        keytab = str(kerberos.http_keytab_path()) if files else http_keytab_file
        if not keytab:
            raise ValueError("kerberos.http_keytab needs the path it is mounted at")
        options["keytab"] = keytab
        options["realms"] = ",".join(kerberos.realms)
    return {"core": {"auth_manager": MLWF_AUTH_MANAGER}, "mlwf_auth": options}


def policy_text(spec: InstanceSpec) -> str:
    """Return the policy document of ``spec`` as JSON text."""
    return json.dumps(access_policy(spec), sort_keys=True)


def write_auth_files(
    spec: InstanceSpec, folder: Path, bind_password: str | None
) -> tuple[Path | None, Path | None]:
    """Write the policy and the bind password (mode 0600) for ``mlwf instance up``.

    Returns ``(bind password file, policy file)``; both None without ldap.
    """
    if spec.ldap is None:
        return None, None
    folder.mkdir(mode=0o700, exist_ok=True)
    policy = folder / "policy.json"
    _write_private(policy, policy_text(spec))
    secret = None
    if bind_password is not None:
        secret = folder / "ldap_bind_password"
        _write_private(secret, bind_password)
    return secret, policy
