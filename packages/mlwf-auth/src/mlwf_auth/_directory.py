"""A user's groups from LDAP, cached with a TTL, and password checks by binding as the user.

:class:`LdapDirectory` finds a user under ``user_base`` with ``user_filter`` (``{user}`` is the
escaped user name; a filter may also exclude disabled accounts, e.g.
``(&(uid={user})(!(pwdAccountLockedTime=*)))``), then reads the user's groups in one of three
ways (:data:`GroupStyle`):

- ``member_of``: the user's ``memberOf`` values (OpenLDAP's memberof overlay, Active Directory);
- ``member``: groups under ``group_base`` whose ``member`` is the user's DN (``groupOfNames``);
- ``member_uid``: groups under ``group_base`` whose ``memberUid`` is the user name (``posixGroup``).

A group's name is its ``cn`` (``group_name_attribute``; with ``member_of``, the value of the
first RDN of each ``memberOf`` DN). Answers are cached per user for
``ttl`` seconds, so a removed membership, a disabled or a deleted account takes effect within
the TTL and a busy instance asks LDAP once per user per TTL (``queries`` counts the searches).

Errors: an unknown (or filtered-out) user raises :class:`UnknownUserError`; LDAP unreachable
or timing out raises :class:`DirectoryUnavailableError` (``connect_timeout`` and
``receive_timeout``, default 5 s each); a wrong password makes :meth:`LdapDirectory.authenticate`
return None. Passwords are never logged, cached or kept.
"""

from __future__ import annotations

import math
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cachetools
import ldap3
from ldap3.core.exceptions import LDAPException, LDAPSASLPrepError, LDAPSocketOpenError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from mlwf_auth._errors import DirectoryUnavailableError, UnknownUserError

GroupStyle = Literal["member_of", "member", "member_uid"]
GROUP_STYLES: tuple[GroupStyle, ...] = ("member_of", "member", "member_uid")

#: User names: what a Kerberos principal's primary or a login form may carry.
_USER = re.compile(r"^[A-Za-z0-9._@+-]{1,256}$")
#: At most this many groups are read for one user (a bound on what a directory can make us hold).
MAX_GROUPS = 1000


@dataclass(frozen=True)
class DirectorySettings:
    """Where and how to find users and their groups; see the module's documentation."""

    url: str
    user_base: str
    group_base: str | None = None
    user_filter: str = "(uid={user})"
    group_style: GroupStyle = "member_of"
    group_name_attribute: str = "cn"
    user_attribute: str = "uid"
    ca_certs_file: str | None = None
    start_tls: bool = False
    bind_dn: str | None = None
    bind_password: str | None = None
    ttl: float = 300.0
    connect_timeout: float = 5.0
    receive_timeout: float = 5.0
    cache_size: int = 10_000

    def __post_init__(self) -> None:
        if self.group_style not in GROUP_STYLES:
            raise ValueError(f"group_style: {self.group_style!r} is not one of {GROUP_STYLES}")
        if self.group_style != "member_of" and not self.group_base:
            raise ValueError(f"group_base: needed for group_style {self.group_style!r}")
        if "{user}" not in self.user_filter:
            raise ValueError(f"user_filter: {self.user_filter!r} does not contain {{user}}")
        if self.url.endswith("/"):
            raise ValueError(f"url: {self.url!r}: no trailing slash (ldap3 refuses it)")
        if self.ttl < 0:
            raise ValueError(f"ttl: {self.ttl} is negative")
        if self.start_tls and self.url.lower().startswith("ldaps://"):
            raise ValueError("start_tls: the URL is ldaps:// already")

    @property
    def encrypted(self) -> bool:
        """Whether passwords travel encrypted (ldaps:// or StartTLS; certificates verified)."""
        return self.start_tls or self.url.lower().startswith("ldaps://")

    def __repr__(self) -> str:
        hidden = None if self.bind_password is None else "***"
        return (
            f"DirectorySettings(url={self.url!r}, user_base={self.user_base!r}, "
            f"group_base={self.group_base!r}, user_filter={self.user_filter!r}, "
            f"group_style={self.group_style!r}, bind_dn={self.bind_dn!r}, bind_password={hidden}, "
            f"ttl={self.ttl})"
        )


@dataclass(frozen=True)
class DirectoryUser:
    """A user found in the directory: name, DN and group names."""

    name: str
    dn: str
    groups: frozenset[str]


class LdapDirectory:
    """Users and their groups in an LDAP directory (thread-safe; answers cached ``ttl`` seconds)."""

    def __init__(
        self, settings: DirectorySettings, *, clock: Callable[[], float] | None = None
    ) -> None:
        """Use ``settings``; ``clock`` (seconds, monotonic) is the cache's timer."""
        self.settings = settings
        # TLS (ldaps:// or StartTLS) always verifies the server's certificate: ldap3's default
        # would not, and a forged server could then answer any bind and any group.
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=settings.ca_certs_file,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self._server = ldap3.Server(
            settings.url, connect_timeout=settings.connect_timeout, get_info=ldap3.NONE, tls=tls
        )
        #: The last groups LDAP gave each user (kept past the TTL: used while LDAP is down).
        self._last_known: cachetools.LRUCache[str, frozenset[str]] = cachetools.LRUCache(
            maxsize=settings.cache_size
        )
        timer = clock if clock is not None else _monotonic
        self._cache: cachetools.TTLCache[str, DirectoryUser] = cachetools.TTLCache(
            maxsize=settings.cache_size, ttl=settings.ttl, timer=timer
        )
        self._lock = threading.Lock()
        #: LDAP searches made so far (a cache hit makes none).
        self.queries = 0

    def _connection(self, user: str | None = None, password: str | None = None) -> ldap3.Connection:
        settings = self.settings
        if user is None:
            user, password = settings.bind_dn, settings.bind_password
        connection = ldap3.Connection(
            self._server,
            user=user,
            password=password,
            read_only=True,
            # ldap3 packs it into SO_RCVTIMEO as whole seconds: an int, at least 1.
            receive_timeout=max(1, math.ceil(settings.receive_timeout)),
            raise_exceptions=False,
            auto_referrals=False,  # never re-send credentials to a server a referral names
        )
        try:
            connection.open()
            if settings.start_tls and not connection.start_tls():
                raise DirectoryUnavailableError(
                    settings.url,
                    f"StartTLS failed: {(connection.result or {}).get('description', 'invalidCredentials')}",
                )
        except LDAPSocketOpenError as err:
            raise DirectoryUnavailableError(settings.url, str(err)) from None
        except LDAPException as err:
            raise DirectoryUnavailableError(settings.url, str(err)) from None
        return connection

    def _service_connection(self) -> ldap3.Connection:
        """Return a connection bound as the service account; raise if the bind is refused."""
        connection = self._connection()
        if not self._bind(connection):
            connection.unbind()
            raise DirectoryUnavailableError(
                self.settings.url,
                f"bind as {self.settings.bind_dn or 'anonymous'} refused: "
                f"{(connection.result or {}).get('description', 'invalidCredentials')}",
            )
        return connection

    def check(self) -> None:
        """Connect and bind with the service account; raise DirectoryUnavailableError if that fails."""
        self._service_connection().unbind()

    def _bind(self, connection: ldap3.Connection) -> bool:
        try:
            return bool(connection.bind())
        except LDAPSASLPrepError:
            return False  # a password ldap3 refuses to send (SASLprep) is a wrong password
        except LDAPException as err:
            raise DirectoryUnavailableError(self.settings.url, str(err)) from None

    def _search(
        self, connection: ldap3.Connection, base: str, query: str, attributes: list[str]
    ) -> list[dict[str, object]]:
        with self._lock:
            self.queries += 1
        try:
            ok = connection.search(
                base, query, attributes=attributes, size_limit=MAX_GROUPS, time_limit=10
            )
        except LDAPException as err:
            raise DirectoryUnavailableError(self.settings.url, str(err)) from None
        result = connection.result or {}
        # sizeLimitExceeded still returns the first MAX_GROUPS entries; noSuchObject = empty base.
        if not ok and result.get("description") not in (
            "success",
            "sizeLimitExceeded",
            "noSuchObject",
        ):
            raise DirectoryUnavailableError(
                self.settings.url, f"search of {base} failed: {result.get('description')}"
            )
        return [
            {"dn": entry["dn"], **entry.get("attributes", {})}
            for entry in connection.response or []
            if entry.get("type") == "searchResEntry"
        ]

    def _find(self, connection: ldap3.Connection, user: str) -> DirectoryUser:
        settings = self.settings
        query = settings.user_filter.replace("{user}", escape_filter_chars(user))
        attributes = [settings.user_attribute]
        if settings.group_style == "member_of":
            attributes.append("memberOf")
        entries = self._search(connection, settings.user_base, query, attributes)
        if len(entries) != 1:
            raise UnknownUserError(user, "not found" if not entries else "more than one entry")
        entry = entries[0]
        # LDAP matches names case-insensitively; the identity must be the entry's own name,
        # exactly: "ALICE" (another Kerberos principal) must not become alice.
        if user not in [str(v) for v in _values(entry.get(settings.user_attribute))]:
            raise UnknownUserError(
                user, f"not found (the entry's {settings.user_attribute} differs)"
            )
        dn = str(entry["dn"])
        if settings.group_style == "member_of":
            base = _normalized(settings.group_base) if settings.group_base else None
            names = [
                _rdn_value(str(value))
                for value in _values(entry.get("memberOf"))
                # With a group base, only groups under it count (a "cn=platform" elsewhere
                # in the directory is not the platform group).
                if base is None or _normalized(str(value)).endswith("," + base)
            ]
        else:
            assert settings.group_base is not None  # checked by DirectorySettings
            if settings.group_style == "member":
                group_query = f"(member={escape_filter_chars(dn)})"
            else:
                group_query = f"(memberUid={escape_filter_chars(user)})"
            attribute = settings.group_name_attribute
            groups = self._search(connection, settings.group_base, group_query, [attribute])
            names = [str(value) for group in groups for value in _values(group.get(attribute))]
        return DirectoryUser(user, dn, frozenset(name for name in names[:MAX_GROUPS] if name))

    def cached(self, user: str) -> DirectoryUser | None:
        """Return ``user`` from the cache if fresh, without asking LDAP."""
        with self._lock:
            return self._cache.get(user)

    def last_known_groups(self, user: str) -> frozenset[str] | None:
        """Return the groups LDAP last gave ``user`` (however old), or None."""
        with self._lock:
            return self._last_known.get(user)

    def lookup(self, user: str) -> DirectoryUser:
        """Return ``user`` with its groups, from the cache while fresh; raise UnknownUserError."""
        _check_name(user)
        with self._lock:
            cached = self._cache.get(user)
        if cached is not None:
            return cached
        connection = self._service_connection()
        try:
            try:
                found = self._find(connection, user)
            except UnknownUserError:
                with self._lock:
                    self._last_known[user] = frozenset()  # gone: no stale groups to fall back on
                raise
        finally:
            connection.unbind()
        with self._lock:
            self._cache[user] = found
            self._last_known[user] = found.groups
        return found

    def groups(self, user: str) -> frozenset[str]:
        """Return the group names of ``user`` (cached); raise UnknownUserError."""
        return self.lookup(user).groups

    def forget(self, user: str) -> None:
        """Drop ``user`` from the cache: the next lookup asks LDAP."""
        with self._lock:
            self._cache.pop(user, None)

    def authenticate(self, user: str, password: str) -> DirectoryUser | None:
        """Return ``user`` with fresh groups if ``password`` is theirs, else None (never cached)."""
        _check_name(user)
        if not password:
            return None  # an empty password would be an anonymous bind, which always "succeeds"
        self.forget(user)
        found = self.lookup(user)
        connection = self._connection(found.dn, password)
        try:
            return found if self._bind(connection) else None
        finally:
            connection.unbind()


def _monotonic() -> float:
    import time

    return time.monotonic()


def _check_name(user: str) -> None:
    if not _USER.fullmatch(user):
        raise UnknownUserError(user[:64], "not a valid user name")


def _values(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _normalized(dn: str) -> str:
    """Return ``dn`` lower-cased without spaces around its separators (for suffix checks)."""
    try:
        return ",".join(f"{a.lower()}={v.lower()}" for a, v, _ in parse_dn(dn))
    except LDAPException:
        return dn.lower()


def _rdn_value(dn: str) -> str:
    """Return the value of the first RDN of ``dn`` (``cn=team-a,ou=groups,…`` → ``team-a``)."""
    try:
        return str(parse_dn(dn)[0][1])
    except (IndexError, LDAPException):
        return ""
