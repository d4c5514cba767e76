"""``MlwfAuthManager``: Airflow 3's auth manager for LDAP groups, Kerberos login and DAG rules.

Set ``[core] auth_manager = mlwf_auth.manager.MlwfAuthManager`` and the ``[mlwf_auth]``
options (:mod:`mlwf_auth._settings`). At start (``init``) the policy file, the keytab and the
LDAP server are checked; any problem stops the API server with a message naming the option.

Who may do what:

- A user's groups come from LDAP, cached ``ldap_ttl`` seconds, on every request (cookie or
  bearer): a removed membership or a disabled account counts within the TTL. While LDAP is
  down, the groups in the user's token count (sessions continue until their token expires),
  and new logins get 503; the groups used then are the last LDAP gave (never more than the
  token's), so a membership removed before the outage stays removed.
- Instance roles (``roles`` of the policy): admins may do everything. Users and viewers may use
  the instance (views, pools) and may do on DAGs exactly what the rules give their groups,
  plus everything on the DAGs their groups own (constructor instances they created,
  :mod:`mlwf_auth._owners`); viewers never more than ``read``. Connections and the configuration are for admins only;
  variables are readable by users, writable by admins; assets and import errors are for
  admins only, because Airflow's answers about them name other teams' DAGs and files (and an
  asset event starts every DAG scheduled on it). A user in no role's group may not log in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import cachetools
from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.api_fastapi.auth.managers.exceptions import AuthManagerRefreshTokenExpiredException
from airflow.api_fastapi.common.types import MenuItem
from airflow.configuration import conf

from mlwf_auth._dag_facts import DagFactsCache
from mlwf_auth._directory import DirectoryUser, LdapDirectory
from mlwf_auth._errors import AuthConfigError, DirectoryUnavailableError, UnknownUserError
from mlwf_auth._owners import Ownership, installed_sources
from mlwf_auth._rules import Action, DagFacts, Role, required_action
from mlwf_auth._settings import SECTION, AuthSettings
from mlwf_auth._user import MlwfUser

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        AccessView,
        AssetAliasDetails,
        AssetDetails,
        ConfigurationDetails,
        ConnectionDetails,
        DagAccessEntity,
        DagDetails,
        PoolDetails,
        VariableDetails,
    )
    from fastapi import FastAPI

    from mlwf_auth._spnego import SpnegoAcceptor

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: After LDAP failed, it is not asked again for this many seconds (requests do not each wait
#: for a timeout while it is down).
LDAP_RETRY_AFTER = 30.0
#: Menu items a role does not see (admins see all).
_HIDDEN: dict[Role, frozenset[MenuItem]] = {
    "user": frozenset({MenuItem.CONFIG, MenuItem.CONNECTIONS, MenuItem.PROVIDERS}),
    "viewer": frozenset(
        {MenuItem.CONFIG, MenuItem.CONNECTIONS, MenuItem.PROVIDERS, MenuItem.VARIABLES}
    ),
}


#: Options that may come from a command (``KEY_cmd``) or a secrets backend (``KEY_secret``).
#: Airflow honours those forms only for options it knows as sensitive, so they are read here.
_SECRET_OPTIONS = frozenset({"ldap_bind_password"})


def _option(key: str) -> str | None:
    value = conf.get(SECTION, key, fallback=None)
    if value is None and key in _SECRET_OPTIONS:
        command = conf.get(SECTION, f"{key}_cmd", fallback=None)
        if command:
            from airflow.configuration import run_command

            # A command prints a line: its newline is not part of the password.
            return str(run_command(command)).rstrip("\r\n")
        path = conf.get(SECTION, f"{key}_secret", fallback=None)
        if path:
            secret = conf._get_config_value_from_secret_backend(path)
            return None if secret is None else str(secret)
    return None if value is None else str(value)


class MlwfAuthManager(BaseAuthManager[MlwfUser]):
    """Airflow auth manager: LDAP groups, Kerberos (SPNEGO) and password login, DAG rules."""

    def __init__(self, context: Any = None) -> None:
        """Build the manager; settings are read and checked by :meth:`init` (or on first use)."""
        super().__init__()  # type: ignore[no-untyped-call]  # LoggingMixin's, untyped
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()

    # -- set-up -----------------------------------------------------------------------------

    def init(self) -> None:
        """Check every setting and reach LDAP once; raise naming the option at fault."""
        if conf.getboolean("core", "multi_team", fallback=False):
            # Airflow would expect team-scoped connections, variables and pools to be checked
            # by team, which this manager's role matrix does not do: refused, not ignored.
            raise AuthConfigError(
                "[core] multi_team",
                "not supported by mlwf-auth: separate teams by DAG rules (bundles, DAG id "
                "prefixes), or run one instance per team",
            )
        super().init()
        loaded = self._state()
        loaded.directory.check()

    def _state(self) -> _Loaded:
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    self._loaded = _Loaded(AuthSettings.read(_option))
        return self._loaded

    @property
    def settings(self) -> AuthSettings:
        """The validated ``[mlwf_auth]`` settings."""
        return self._state().settings

    # -- users and tokens -------------------------------------------------------------------

    def deserialize_user(self, token: dict[str, Any]) -> MlwfUser:
        """Return the user of a validated JWT."""
        return MlwfUser.deserialize(token)

    def serialize_user(self, user: MlwfUser) -> dict[str, Any]:
        """Return the JWT claims of ``user``: its name and groups."""
        return user.serialize()

    def login_user(self, found: DirectoryUser) -> MlwfUser | None:
        """Return the user to log in for a directory entry, or None if it holds no role here.

        The token carries only the groups the policy names: a user of an Active Directory in
        hundreds of groups still fits in a browser cookie (4 KiB).
        """
        policy = self._state().settings.policy
        if policy.role(found.groups) is None:
            return None
        return MlwfUser(found.name, found.groups & policy.named_groups)

    def find_user(self, name: str, *, fresh: bool) -> DirectoryUser:
        """Return ``name``'s directory entry (``fresh``: not from the cache); LDAP's down window counts."""
        return self._state().lookup(name, fresh=fresh)

    def check_password(self, name: str, password: str) -> DirectoryUser | None:
        """Return ``name``'s entry if ``password`` is theirs, else None; LDAP's down window counts."""
        return self._state().authenticate(name, password)

    def groups_of(self, user: MlwfUser) -> frozenset[str]:
        """Return ``user``'s groups now: from LDAP (cached), or the token's while LDAP is down.

        A user the directory no longer has (deleted, or disabled by the user filter) has none.
        """
        return self._state().groups(user)

    def refresh_user(self, *, user: MlwfUser) -> MlwfUser | None:
        """Renew a cookie whose groups changed; end the session of a user LDAP no longer has.

        Airflow calls this on every cookie request, on its event loop: it only reads what the
        cache knows (authorization checks keep the cache current) and never waits for LDAP.
        """
        state = self._state()
        if state.gone(user.name):
            raise AuthManagerRefreshTokenExpiredException(f"{user.name} is gone from LDAP")
        found = state.directory.cached(user.name)
        if found is None:
            return None
        renewed = self.login_user(found)
        if renewed is None:
            raise AuthManagerRefreshTokenExpiredException(f"{user.name} holds no role any more")
        return None if renewed.groups == user.groups else renewed

    def get_url_login(self, **kwargs: Any) -> str:
        """Return the login page (Kerberos when the browser can, else a password form)."""
        from urllib.parse import urlencode

        from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX

        url = f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/login"
        next_url = kwargs.get("next_url")
        return f"{url}?{urlencode({'next': next_url})}" if next_url else url

    def get_url_logout(self) -> str | None:
        """Return the page that ends the session (Airflow has revoked the tokens already)."""
        from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX

        return f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/logout"

    def get_fastapi_app(self) -> FastAPI | None:
        """Return the login, token and logout routes (mounted at ``/auth``)."""
        from mlwf_auth._routes import create_app

        return create_app(self)

    def get_fastapi_middlewares(self) -> list[tuple[Any, dict[str, Any]]]:
        """Accept ``Authorization: Negotiate`` on any API request when Kerberos is on."""
        if self._state().settings.keytab is None:
            return []
        from mlwf_auth._middleware import NegotiateMiddleware

        return [(NegotiateMiddleware, {"manager": self})]

    @property
    def directory(self) -> LdapDirectory:
        """The LDAP directory of users and groups."""
        return self._state().directory

    @property
    def acceptor(self) -> SpnegoAcceptor | None:
        """The SPNEGO acceptor, or None when no keytab is set."""
        return self._state().acceptor()

    # -- authorization ----------------------------------------------------------------------

    def _role(self, user: MlwfUser) -> tuple[Role | None, frozenset[str]]:
        groups = self.groups_of(user)
        return self._state().settings.policy.role(groups), groups

    def _instance(self, method: str, user: MlwfUser, *, read: set[Role], write: set[Role]) -> bool:
        role, _ = self._role(user)
        if role is None:
            return False
        return role in (read if method == "GET" else write)

    def is_authorized_configuration(
        self, *, method: ResourceMethod, user: MlwfUser, details: ConfigurationDetails | None = None
    ) -> bool:
        """Admins only."""
        return self._instance(method, user, read={"admin"}, write={"admin"})

    def is_authorized_connection(
        self, *, method: ResourceMethod, user: MlwfUser, details: ConnectionDetails | None = None
    ) -> bool:
        """Admins only: connections hold credentials."""
        return self._instance(method, user, read={"admin"}, write={"admin"})

    def is_authorized_variable(
        self, *, method: ResourceMethod, user: MlwfUser, details: VariableDetails | None = None
    ) -> bool:
        """Users and admins read; admins write."""
        return self._instance(method, user, read={"admin", "user"}, write={"admin"})

    def is_authorized_pool(
        self, *, method: ResourceMethod, user: MlwfUser, details: PoolDetails | None = None
    ) -> bool:
        """Everyone with a role reads; admins write."""
        return self._instance(method, user, read={"admin", "user", "viewer"}, write={"admin"})

    def is_authorized_asset(
        self, *, method: ResourceMethod, user: MlwfUser, details: AssetDetails | None = None
    ) -> bool:
        """Admins only: Airflow's asset answers name every DAG producing or consuming an asset,
        whoever owns it, and an asset event starts other teams' DAGs."""
        return self._instance(method, user, read={"admin"}, write={"admin"})

    def is_authorized_asset_alias(
        self, *, method: ResourceMethod, user: MlwfUser, details: AssetAliasDetails | None = None
    ) -> bool:
        """As assets."""
        return self._instance(method, user, read={"admin"}, write={"admin"})

    def is_authorized_view(self, *, access_view: AccessView, user: MlwfUser) -> bool:
        """Everyone with a role, but import errors (other teams' file paths and tracebacks): admins."""
        role = self._role(user)[0]
        if access_view.name == "IMPORT_ERRORS":
            return role == "admin"
        return role is not None

    def is_authorized_custom_view(
        self, *, method: ResourceMethod | str, resource_name: str, user: MlwfUser
    ) -> bool:
        """Plugin pages: everyone with a role reads; users and admins write (plugins check DAGs)."""
        return self._instance(
            str(method), user, read={"admin", "user", "viewer"}, write={"admin", "user"}
        )

    def filter_authorized_menu_items(
        self, menu_items: list[MenuItem], *, user: MlwfUser
    ) -> list[MenuItem]:
        """Admins see every menu; users no Config, Connections, Providers; viewers no Variables either."""
        role, _ = self._role(user)
        if role is None:
            return []
        hidden = _HIDDEN.get(role, frozenset())
        return [item for item in menu_items if item not in hidden]

    def _dag_action(
        self, method: ResourceMethod | str, access_entity: DagAccessEntity | None
    ) -> Action:
        return required_action(str(method), None if access_entity is None else access_entity.name)

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: MlwfUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        """Whether the rules give ``user``'s groups the action this request needs on the DAG.

        Without a DAG id (list endpoints, which then filter DAG by DAG), whether the user may
        have such access at all.
        """
        role, groups = self._role(user)
        if role is None:
            return False
        action = self._dag_action(method, access_entity)
        if role == "viewer" and action != "read":
            return False
        state = self._state()
        if details is None or details.id is None:
            # A list or bulk route, which filters DAG by DAG afterwards: only if some DAG may be.
            return state.settings.policy.grants_any(groups, action) or state.owners.owns_any(groups)
        if state.owners.owns(groups, details.id):
            return True
        facts = state.facts.get(details.id)
        return state.settings.policy.is_allowed(groups, action, facts)

    def owner_groups(self, *, user: MlwfUser, dag_id: str) -> list[str]:
        """Return the groups that own a DAG ``user`` creates (a constructor instance): those of
        its current groups through which it may ``edit`` ``dag_id`` (an admin group, or a rule).

        Not every group of the user: a group that only reads some reports must not gain every
        action on what one of its members creates for another team.
        """
        state = self._state()
        policy = state.settings.policy
        facts = state.facts.get(dag_id)
        # is_allowed is True for an admin group; members' roles still cap what they may do.
        return sorted(g for g in self.groups_of(user) if policy.is_allowed({g}, "edit", facts))

    def filter_authorized_dag_ids(
        self,
        *,
        dag_ids: set[str],
        user: MlwfUser,
        method: ResourceMethod = "GET",
        team_name: str | None = None,
    ) -> set[str]:
        """Return the DAGs of ``dag_ids`` ``user`` may access with ``method``: one query, one pass."""
        role, groups = self._role(user)
        if role is None or not dag_ids:
            return set()
        action = self._dag_action(method, None)
        if role == "viewer" and action != "read":
            return set()
        state = self._state()
        owned = state.owners.owned(groups, dag_ids)
        others = sorted(dag_ids - owned)
        if not others:
            return owned
        facts: list[DagFacts] = state.facts.get_many(others)
        return owned | state.settings.policy.filter_dags(groups, action, facts)


class _Loaded:
    """The manager's state once its settings are read: policy, directory, acceptor, caches."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.directory = LdapDirectory(settings.directory)
        self.facts = DagFactsCache(settings.dag_facts_ttl)
        self.owners = Ownership(
            installed_sources(settings.owners, f"[{SECTION}] owners"), settings.owners_ttl
        )
        if self.owners.sources:
            log.info("mlwf-auth: DAG owners from %s", ", ".join(self.owners.sources))
        self._acceptor: SpnegoAcceptor | None = None
        if settings.keytab is not None:
            from mlwf_auth._spnego import SpnegoAcceptor

            self._acceptor = SpnegoAcceptor(
                settings.keytab, realms=settings.realms, setting=f"[{SECTION}] keytab"
            )
        self._ldap_down_until = 0.0
        #: Users LDAP said it does not have, for a TTL (no query per request for them).
        self._gone: cachetools.TTLCache[str, bool] = cachetools.TTLCache(
            maxsize=10_000, ttl=max(settings.directory.ttl, 1.0)
        )

    def acceptor(self) -> SpnegoAcceptor | None:
        return self._acceptor

    def gone(self, name: str) -> bool:
        """Whether LDAP said lately that it has no ``name``."""
        return bool(self._gone.get(name))

    def _ldap(self, call: Callable[[], _T]) -> _T:
        if time.monotonic() < self._ldap_down_until:
            raise DirectoryUnavailableError(self.settings.directory.url, "down (retrying soon)")
        try:
            return call()
        except DirectoryUnavailableError as err:
            log.warning("mlwf-auth: %s; using the last known groups meanwhile", err)
            self._ldap_down_until = time.monotonic() + LDAP_RETRY_AFTER
            raise

    def lookup(self, name: str, *, fresh: bool = False) -> DirectoryUser:
        """Return the directory's entry of ``name``; raise while LDAP counts as down."""
        if fresh:
            self.directory.forget(name)
            self._gone.pop(name, None)
        elif self.gone(name):
            raise UnknownUserError(name, "not found")
        try:
            return self._ldap(lambda: self.directory.lookup(name))
        except UnknownUserError:
            self._gone[name] = True
            raise

    def authenticate(self, name: str, password: str) -> DirectoryUser | None:
        """Check ``password`` by binding as ``name``; raise while LDAP counts as down."""
        return self._ldap(lambda: self.directory.authenticate(name, password))

    def groups(self, user: MlwfUser) -> frozenset[str]:
        """``user``'s groups now; while LDAP is down, the last known ones (at most the token's)."""
        try:
            return self.lookup(user.name).groups
        except UnknownUserError:
            return frozenset()
        except DirectoryUnavailableError:
            last = self.directory.last_known_groups(user.name)
            return user.groups if last is None else user.groups & last
