"""mlwf-auth: an Airflow 3 auth manager with Kerberos single sign-on, LDAP groups and DAG-level access.

This release holds its two foundations: :class:`AccessPolicy` (instance roles from groups and
per-DAG rules, checked in one pass over many DAGs) and :class:`LdapDirectory` (a user's groups
from LDAP with a TTL cache, password checks by bind). The auth manager and the SPNEGO login
build on them.
"""

from importlib.metadata import version as _version

from mlwf_auth._directory import DirectorySettings, DirectoryUser, GroupStyle, LdapDirectory
from mlwf_auth._errors import DirectoryUnavailableError, MlwfAuthError, UnknownUserError
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
    "LdapDirectory",
    "MlwfAuthError",
    "PolicyModel",
    "Roles",
    "UnknownUserError",
    "glob_escape",
    "required_action",
]
