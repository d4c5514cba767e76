"""Exceptions raised by mlwf-auth; every message names the user, setting or server at fault."""

from __future__ import annotations


class MlwfAuthError(Exception):
    """Base class of every error raised by mlwf-auth."""


class DirectoryUnavailableError(MlwfAuthError):
    """The LDAP server cannot be reached, or refused the service account's bind or a search."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"LDAP server {url} unavailable: {reason}")
        #: The server's URL.
        self.url = url


class UnknownUserError(MlwfAuthError):
    """The user is not in the directory (deleted, disabled by the user filter, or never there)."""

    def __init__(self, user: str, reason: str) -> None:
        super().__init__(f"user {user!r}: {reason}")
        #: The user name asked for.
        self.user = user


class AuthConfigError(MlwfAuthError, ValueError):
    """A setting of the auth manager cannot work; the message starts with the setting's name."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        #: The setting at fault (``[mlwf_auth] ldap_url``).
        self.setting = setting


class KerberosConfigError(AuthConfigError):
    """The Kerberos settings cannot work: no keytab, an unreadable or empty one, no realm, no gssapi."""


class NegotiationError(MlwfAuthError):
    """A client's SPNEGO (Negotiate) authentication was refused; the message says why."""
