"""mlwf-auth: an Airflow 3 auth manager with Kerberos single sign-on, LDAP groups and DAG-level access.

This release holds its foundations: :class:`AccessPolicy` (instance roles from groups and
per-DAG rules, checked in one pass over many DAGs), :class:`LdapDirectory` (a user's groups
from LDAP with a TTL cache, password checks by bind) and :class:`SpnegoAcceptor` (who sent a
``Negotiate`` header; needs the ``kerberos`` extra). The auth manager builds on them.
"""

from importlib import import_module
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

from mlwf_auth._errors import (
    DirectoryUnavailableError,
    KerberosConfigError,
    MlwfAuthError,
    NegotiationError,
    UnknownUserError,
)
from mlwf_auth._rules import (
    ACTIONS,
    AccessPolicy,
    Action,
    DagFacts,
    DagRule,
    PolicyModel,
    Roles,
    glob_escape,
    required_action,
)

if TYPE_CHECKING:
    from mlwf_auth._directory import (
        DirectorySettings,
        DirectoryUser,
        GroupStyle,
        LdapDirectory,
    )
    from mlwf_auth._spnego import Negotiated, SpnegoAcceptor, user_from_principal

#: Imported on first use: the rules alone (mlwf-instance's spec) need no LDAP client.
_LAZY = {
    "DirectorySettings": "mlwf_auth._directory",
    "DirectoryUser": "mlwf_auth._directory",
    "GroupStyle": "mlwf_auth._directory",
    "LdapDirectory": "mlwf_auth._directory",
    "Negotiated": "mlwf_auth._spnego",
    "SpnegoAcceptor": "mlwf_auth._spnego",
    "user_from_principal": "mlwf_auth._spnego",
}

__version__ = _version("mlwf-auth")

__all__ = [
    "__version__",
    "ACTIONS",
    "AccessPolicy",
    "Action",
    "DagFacts",
    "DagRule",
    "DirectorySettings",
    "DirectoryUnavailableError",
    "DirectoryUser",
    "GroupStyle",
    "KerberosConfigError",
    "LdapDirectory",
    "MlwfAuthError",
    "Negotiated",
    "NegotiationError",
    "PolicyModel",
    "Roles",
    "SpnegoAcceptor",
    "UnknownUserError",
    "glob_escape",
    "required_action",
    "user_from_principal",
]

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Import the module defining ``name`` on first access and keep the value."""
        try:
            module = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module 'mlwf_auth' has no attribute {name!r}") from None
        value = getattr(import_module(module), name)
        globals()[name] = value  # later accesses skip __getattr__
        return value

    def __dir__() -> list[str]:
        """List the public names too, before their first access."""
        return sorted({*globals(), *__all__})
