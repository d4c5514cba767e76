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
from typing import Any

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
    spec: InstanceSpec, *, bind_password: str | None, files: bool = True
) -> dict[str, dict[str, str]]:
    """Return the ``[core] auth_manager`` and ``[mlwf_auth]`` options of ``spec`` (none without ldap).

    ``bind_password`` is the resolved ``ldap.bind_password`` (None on render targets, which
    take it from a Secret). ``files=False`` leaves out the options naming files of this machine
    (the CA certificates and the HTTP keytab), which cluster targets do not support yet.
    """
    ldap = spec.ldap
    if ldap is None:
        return {}
    options = {
        "policy": json.dumps(access_policy(spec), sort_keys=True),
        "ldap_url": ldap.url,
        "ldap_user_base": ldap.user_base,
        "ldap_group_base": ldap.group_base,
        "ldap_group_style": ldap.group_style,
    }
    if ldap.user_filter is not None:
        options["ldap_user_filter"] = ldap.user_filter
    if ldap.bind_dn is not None:
        options["ldap_bind_dn"] = ldap.bind_dn
    if bind_password is not None:
        options["ldap_bind_password"] = bind_password
    if ldap.start_tls:
        options["ldap_start_tls"] = "True"
    kerberos = spec.kerberos
    if files:
        if ldap.ca_certs_file is not None:
            options["ldap_ca_certs_file"] = str(ldap.ca_certs_file)
        if kerberos is not None and (keytab := kerberos.http_keytab_path()) is not None:
            options["keytab"] = str(keytab)
            options["realms"] = ",".join(kerberos.realms)
    return {"core": {"auth_manager": MLWF_AUTH_MANAGER}, "mlwf_auth": options}
