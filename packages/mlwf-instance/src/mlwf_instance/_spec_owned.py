"""The Airflow options an instance spec owns: ``airflow_config`` may not set them.

A team's ``airflow_config`` adds Airflow options the spec has no field for (``[core]
parallelism``, ``[scheduler] …``). An option the spec (or mlwf itself) already sets would either
be silently overridden or, worse, silently win over the spec: both are refused when the spec is
validated, naming the field that sets it. The runtime and render targets use the same table to
know which options are theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_GENERATED = "mlwf: a secret generated and kept in the instance home"

#: ``(section, key)`` → who sets the option, completing "set by …". Lower case, as Airflow reads it.
OWNED_AIRFLOW_OPTIONS: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("core", "executor"): 'the spec\'s "executor" field',
        ("core", "dags_folder"): 'the spec\'s "dag_folders" field',
        ("dag_processor", "dag_bundle_config_list"): 'the spec\'s "dag_folders" field',
        ("database", "sql_alchemy_conn"): 'the spec\'s "database" field',
        ("database", "sql_alchemy_conn_async"): 'the spec\'s "database" field',
        ("celery", "broker_url"): 'the spec\'s "celery.broker" field',
        ("celery", "result_backend"): 'the spec\'s "database" field (results are kept there)',
        ("celery", "worker_concurrency"): 'the spec\'s "celery.concurrency" field',
        (
            "core",
            "auth_manager",
        ): 'the spec\'s "ldap" field (mlwf-auth with it, else SimpleAuthManager)',
        ("mlwf_auth", "policy"): 'the spec\'s "groups" and "dag_rules" fields',
        ("mlwf_auth", "policy_file"): 'the spec\'s "groups" and "dag_rules" fields',
        ("mlwf_auth", "ldap_url"): 'the spec\'s "ldap.url" field',
        ("mlwf_auth", "ldap_user_base"): 'the spec\'s "ldap.user_base" field',
        ("mlwf_auth", "ldap_group_base"): 'the spec\'s "ldap.group_base" field',
        ("mlwf_auth", "ldap_group_style"): 'the spec\'s "ldap.group_style" field',
        ("mlwf_auth", "ldap_user_filter"): 'the spec\'s "ldap.user_filter" field',
        ("mlwf_auth", "ldap_bind_dn"): 'the spec\'s "ldap.bind_dn" field',
        ("mlwf_auth", "ldap_bind_password"): 'the spec\'s "ldap.bind_password" field',
        ("mlwf_auth", "ldap_start_tls"): 'the spec\'s "ldap.start_tls" field',
        ("mlwf_auth", "ldap_ca_certs_file"): 'the spec\'s "ldap.ca_certs_file" field',
        ("mlwf_auth", "keytab"): 'the spec\'s "kerberos.http_keytab" field',
        ("mlwf_auth", "realms"): 'the spec\'s "kerberos.login_realms" field',
        ("core", "fernet_key"): _GENERATED,
        ("api", "secret_key"): _GENERATED,
        ("api_auth", "jwt_secret"): _GENERATED,
        ("api", "host"): 'the spec\'s "api.host" field',
        ("api", "port"): 'the spec\'s "api.port" field',
        ("api", "base_url"): 'the spec\'s "api.base_url" field',
        ("api", "server_type"): (
            "mlwf (uvicorn: the api-server's process also runs the instance's log server)"
        ),
        ("core", "execution_api_server_url"): 'the spec\'s "api" field',
        ("kerberos", "principal"): 'the spec\'s "kerberos.principal" field',
        ("kerberos", "keytab"): 'the spec\'s "kerberos.keytab" field',
        ("metrics", "statsd_on"): 'the spec\'s "metrics.enabled" field',
        ("metrics", "statsd_custom_client_path"): 'the spec\'s "metrics" field',
        ("logging", "base_log_folder"): 'the spec\'s "home" field (logs live in the home)',
        # Set by mlwf whatever the spec says: overriding them would open or break the instance.
        ("core", "simple_auth_manager_users"): "mlwf (the instance's users and roles)",
        ("core", "simple_auth_manager_all_admins"): "mlwf (the instance's users and roles)",
        ("core", "simple_auth_manager_passwords_file"): _GENERATED,
        ("core", "hostname_callable"): "mlwf (task log URLs point at the instance's log server)",
        (
            "celery",
            "celery_config_options",
        ): "mlwf (late acknowledgement, the database broker's polling)",
        ("logging", "worker_log_server_port"): "mlwf (one loopback log server per instance)",
        ("logging", "trigger_log_server_port"): "mlwf (one loopback log server per instance)",
        (
            "operators",
            "default_queue",
        ): 'the spec\'s "celery.queues" field (the workers listen there only)',
    }
)

#: Airflow reads ``KEY_cmd`` (a command printing the value) and ``KEY_secret`` (a secrets
#: backend lookup) in place of ``KEY``: both are the same option.
_ALTERNATE_SUFFIXES = ("_cmd", "_secret")


def owned_option(section: str, key: str) -> str | None:
    """Return who sets Airflow option ``[section] key`` if the spec owns it, else None.

    Case-insensitive, and ``key_cmd`` / ``key_secret`` count as ``key``.
    """
    section, key = section.lower(), key.lower()
    for candidate in (key, *(key.removesuffix(s) for s in _ALTERNATE_SUFFIXES if key.endswith(s))):
        owner = OWNED_AIRFLOW_OPTIONS.get((section, candidate))
        if owner is not None:
            return owner
    return None


def same_option(section: str, key: str, wanted: tuple[str, str]) -> bool:
    """Return whether ``[section] key`` is the option ``wanted`` (or its ``_cmd``/``_secret`` form)."""
    section, key = section.lower(), key.lower()
    names = (key, *(key.removesuffix(s) for s in _ALTERNATE_SUFFIXES if key.endswith(s)))
    return section == wanted[0] and wanted[1] in names
