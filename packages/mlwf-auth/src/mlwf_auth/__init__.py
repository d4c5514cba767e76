"""mlwf-auth: an Airflow 3 auth manager with Kerberos single sign-on, LDAP groups and DAG-level access.

This release holds its foundations: :class:`AccessPolicy` (instance roles from groups and
per-DAG rules, checked in one pass over many DAGs), :class:`LdapDirectory` (a user's groups
from LDAP with a TTL cache, password checks by bind) and :class:`SpnegoAcceptor` (who sent a
``Negotiate`` header; needs the ``kerberos`` extra). The auth manager builds on them.
"""

from importlib.metadata import version as _version

from mlwf_auth._directory import DirectorySettings, DirectoryUser, GroupStyle, LdapDirectory
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
from mlwf_auth._spnego import Negotiated, SpnegoAcceptor, user_from_principal

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
