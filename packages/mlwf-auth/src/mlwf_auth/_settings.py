"""The auth manager's settings: the ``[mlwf_auth]`` section of Airflow's configuration.

=======================  ====================================================================
option                   meaning
=======================  ====================================================================
policy_file              JSON file of the roles and DAG rules (see AccessPolicy)
policy                   the same JSON inline (what mlwf-instance writes); one of the two
ldap_url                 ``ldap://host:port`` of the directory (required)
ldap_user_base           where users are searched (required)
ldap_group_base          where groups are searched (``member`` and ``member_uid`` styles)
ldap_user_filter         default ``(uid={user})``; exclude disabled accounts here
ldap_group_style         ``member_of`` (default), ``member`` or ``member_uid``
ldap_group_name_attribute  default ``cn``
ldap_bind_dn             the service account (default: anonymous)
ldap_bind_password       its password (``ldap_bind_password_cmd`` / ``_secret`` work too)
ldap_user_attribute      the user name attribute (default ``uid``; ``sAMAccountName`` on AD)
ldap_start_tls           ``True``: StartTLS on an ``ldap://`` URL
ldap_ca_certs_file       CA certificates that sign the LDAP server's (default: the system's)
ldap_allow_plaintext     ``True``: allow an unencrypted LDAP server that is not on loopback
ldap_ttl                 seconds a user's groups are cached (default 300)
ldap_timeout             seconds before an LDAP server counts as down (default 5)
keytab                   the ``HTTP/<host>`` keytab: turns on Kerberos (SPNEGO) login
realms                   Kerberos realms whose users may log in (comma-separated; needed
                         with ``keytab``)
dag_facts_ttl            seconds a DAG's tags and bundle are cached (default 30)
owners                   owner sources (``mlwf_auth.owners`` entry points) asked who owns
                         which DAG: ``all`` installed (default), ``none``, or names
owners_ttl               seconds the owners of DAGs are cached (default 10)
=======================  ====================================================================

Every problem is an :class:`AuthConfigError` naming the option (``[mlwf_auth] ldap_ttl: not a
number: 'x'``); nothing here prints a password.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from mlwf_auth._directory import GROUP_STYLES, DirectorySettings
from mlwf_auth._errors import AuthConfigError
from mlwf_auth._rules import AccessPolicy

SECTION = "mlwf_auth"
#: Hosts where an unencrypted LDAP connection never leaves the machine.
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: The largest policy file read (a policy is bounded far below this).
MAX_POLICY_BYTES = 4 * 1024 * 1024

#: Reads an option of ``[mlwf_auth]``: None when it is not set.
Getter = Callable[[str], "str | None"]


def _name(key: str) -> str:
    return f"[{SECTION}] {key}"


@dataclass(frozen=True)
class AuthSettings:
    """What the auth manager needs, validated."""

    policy: AccessPolicy
    directory: DirectorySettings
    keytab: Path | None
    realms: frozenset[str]
    dag_facts_ttl: float
    #: ``all``, ``none`` or entry point names of ``mlwf_auth.owners`` (loaded by the manager).
    owners: str = "all"
    owners_ttl: float = 10.0

    @classmethod
    def read(cls, get: Getter) -> AuthSettings:
        """Read and check every option through ``get``; raise AuthConfigError on the first problem."""

        def required(key: str) -> str:
            value = (get(key) or "").strip()
            if not value:
                raise AuthConfigError(_name(key), "not set")
            return value

        def number(key: str, default: float) -> float:
            raw = (get(key) or "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise AuthConfigError(_name(key), f"not a number: {raw[:40]!r}") from None
            if not 0 <= value <= 86400:
                raise AuthConfigError(_name(key), f"{value:g} is not between 0 and 86400")
            return value

        inline = (get("policy") or "").strip()
        policy_file = (get("policy_file") or "").strip()
        if inline and policy_file:
            raise AuthConfigError(_name("policy"), "set either policy or policy_file, not both")
        if inline:
            policy = parse_policy(inline.encode(), _name("policy"), "")
        else:
            policy = load_policy(Path(required("policy_file")))
        style = (get("ldap_group_style") or "member_of").strip()
        if style not in GROUP_STYLES:
            raise AuthConfigError(
                _name("ldap_group_style"), f"{style!r} is not one of {GROUP_STYLES}"
            )
        timeout = number("ldap_timeout", 5.0)

        def flag(key: str) -> bool:
            raw = (get(key) or "").strip().lower()
            if raw in ("", "false", "0", "no"):
                return False
            if raw in ("true", "1", "yes"):
                return True
            raise AuthConfigError(_name(key), f"not a boolean: {raw[:20]!r}")

        try:
            directory = DirectorySettings(
                url=required("ldap_url"),
                user_base=required("ldap_user_base"),
                group_base=(get("ldap_group_base") or "").strip() or None,
                user_filter=(get("ldap_user_filter") or "").strip() or "(uid={user})",
                group_style=style,  # narrowed to GroupStyle by the check above
                group_name_attribute=(get("ldap_group_name_attribute") or "").strip() or "cn",
                user_attribute=(get("ldap_user_attribute") or "").strip() or "uid",
                ca_certs_file=(get("ldap_ca_certs_file") or "").strip() or None,
                start_tls=flag("ldap_start_tls"),
                bind_dn=(get("ldap_bind_dn") or "").strip() or None,
                bind_password=get("ldap_bind_password") or None,
                ttl=number("ldap_ttl", 300.0),
                connect_timeout=timeout,
                receive_timeout=timeout,
            )
        except ValueError as err:  # DirectorySettings says "<field>: <reason>"
            field, _, reason = str(err).partition(": ")
            raise AuthConfigError(_name(f"ldap_{field}"), reason) from None
        host = (urlsplit(directory.url).hostname or "").lower()
        if not directory.encrypted and host not in _LOOPBACK and not flag("ldap_allow_plaintext"):
            raise AuthConfigError(
                _name("ldap_url"),
                f"{directory.url} is not encrypted and passwords would cross the network in "
                "clear: use ldaps://, ldap_start_tls = True, or ldap_allow_plaintext = True",
            )
        keytab_text = (get("keytab") or "").strip()
        realms = frozenset(r.strip() for r in (get("realms") or "").split(",") if r.strip())
        if keytab_text and not realms:
            raise AuthConfigError(
                _name("realms"), "needed with keytab: the realms whose users may log in"
            )
        return cls(
            policy=policy,
            directory=directory,
            keytab=Path(keytab_text) if keytab_text else None,
            realms=realms,
            dag_facts_ttl=number("dag_facts_ttl", 30.0),
            owners=(get("owners") or "").strip() or "all",
            owners_ttl=number("owners_ttl", 10.0),
        )


def load_policy(path: Path) -> AccessPolicy:
    """Read the policy file at ``path``; raise AuthConfigError naming the file and each wrong field."""
    setting = _name("policy_file")
    try:
        with path.open("rb") as file:
            data = file.read(MAX_POLICY_BYTES + 1)
    except OSError as err:
        raise AuthConfigError(setting, f"{path}: {err.strerror or err}") from None
    return parse_policy(data, setting, f"{path}: ")


def parse_policy(data: bytes, setting: str, where: str) -> AccessPolicy:
    """Parse a policy document; raise AuthConfigError naming ``setting``, ``where`` and each wrong field."""
    if len(data) > MAX_POLICY_BYTES:
        raise AuthConfigError(setting, f"{where}over {MAX_POLICY_BYTES} bytes")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AuthConfigError(setting, f"{where}not JSON: {err}") from None
    except RecursionError:
        raise AuthConfigError(setting, f"{where}nested too deeply") from None
    try:
        return AccessPolicy.from_config(document)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}"
            for error in err.errors()[:20]
        )
        raise AuthConfigError(setting, f"{where}{problems}") from None
