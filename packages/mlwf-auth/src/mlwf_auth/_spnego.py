"""SPNEGO (``Authorization: Negotiate …``) with the service's keytab: who is the client?

:class:`SpnegoAcceptor` checks the keytab when it is built (missing, unreadable or holding no
usable key: :class:`KerberosConfigError` naming the setting), then turns each ``Negotiate``
header into the client's principal and the user name it maps to (:func:`user_from_principal`:
the principal's realm must be one of ``realms``; service principals such as ``HTTP/host@R`` and
principals with an instance such as ``alice/admin@R`` are refused; the ticket must be for an
``HTTP/…`` service of the keytab, not another key it holds). Every client error (not a
Negotiate header, bad base64, a token the keytab cannot accept, a replayed token, clock skew) is
a :class:`NegotiationError` whose message says why and holds no secret.

Needs the ``kerberos`` extra (``gssapi``, which builds against MIT krb5's headers); it is
imported when an acceptor is built, so the rest of mlwf-auth works without it.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwf_auth._errors import KerberosConfigError, NegotiationError

#: The largest Negotiate header accepted (a Kerberos ticket with a large PAC stays far below).
MAX_HEADER = 64 * 1024


@dataclass(frozen=True)
class Negotiated:
    """A client authenticated by SPNEGO: its principal, user name and the reply token (or None)."""

    principal: str
    user: str
    reply: str | None

    @property
    def www_authenticate(self) -> str | None:
        """The ``WWW-Authenticate`` value that completes mutual authentication, if any."""
        return f"Negotiate {self.reply}" if self.reply else None


def user_from_principal(principal: str, realms: frozenset[str]) -> str:
    """Return the user name of ``principal`` (``alice@EXAMPLE.COM`` → ``alice``), or raise NegotiationError."""
    primary, at, realm = principal.rpartition("@")
    if not at or not primary:
        raise NegotiationError(f"principal {principal!r} has no realm")
    if realm not in realms:
        raise NegotiationError(f"principal {principal!r}: realm {realm} is not accepted here")
    if "/" in primary:
        raise NegotiationError(f"principal {principal!r} is a service or has an instance")
    return primary


class SpnegoAcceptor:
    """Accept SPNEGO tokens with a keytab; thread-safe."""

    def __init__(
        self,
        keytab: Path,
        *,
        realms: frozenset[str] | set[str],
        setting: str = "keytab",
    ) -> None:
        """Use the keys of ``keytab`` for clients of ``realms``; ``setting`` names it in errors."""
        if not realms:
            raise KerberosConfigError(setting, "no realm is accepted: name at least one")
        self.realms = frozenset(realms)
        self.keytab = Path(keytab)
        if not self.keytab.is_file():
            raise KerberosConfigError(setting, f"{self.keytab}: no such file")
        if not os.access(self.keytab, os.R_OK):
            raise KerberosConfigError(setting, f"{self.keytab}: not readable by this process")
        try:
            import gssapi
            import gssapi.raw
        except ImportError as err:
            raise KerberosConfigError(
                setting, f"Kerberos needs the mlwf-auth[kerberos] extra (gssapi): {err}"
            ) from None
        self._gssapi: Any = gssapi
        try:
            self._credentials = gssapi.Credentials(
                usage="accept", store={"keytab": str(self.keytab)}
            )
            # Acquiring lazily succeeds on an empty keytab; asking for the credential's names
            # reads the keytab now, so a keytab without keys fails at start, not per request.
            self._credentials.inquire(name=True, lifetime=False, usage=False, mechs=False)
        except gssapi.raw.GSSError as err:
            raise KerberosConfigError(setting, f"{self.keytab}: {_gss_message(err)}") from None
        self._lock = threading.Lock()

    def accept(self, header: str | None) -> Negotiated:
        """Return who sent ``header`` (an ``Authorization`` value), or raise NegotiationError."""
        if header is None:
            raise NegotiationError("no Authorization header")
        if len(header) > MAX_HEADER:
            raise NegotiationError(f"the Authorization header is over {MAX_HEADER} bytes")
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "negotiate" or not value.strip():
            raise NegotiationError("not a Negotiate authorization")
        try:
            token = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise NegotiationError("the Negotiate token is not base64") from None
        gssapi = self._gssapi
        try:
            context = gssapi.SecurityContext(creds=self._credentials, usage="accept")
            reply = context.step(token)
            # gssapi defers an error that came with an error token: the next use of the
            # context raises it, so these two stay inside the try.
            complete = context.complete
            principal = str(context.initiator_name) if complete else ""
            service = str(context.target_name) if complete else ""
        except gssapi.raw.GSSError as err:
            raise NegotiationError(
                f"the Negotiate token was refused: {_gss_message(err)}"
            ) from None
        if not complete:
            raise NegotiationError("the Negotiate exchange needs more rounds (not Kerberos)")
        if not service.startswith("HTTP/"):
            # A keytab may hold other keys (the instance's own principal): a ticket for them
            # is not a login to this web service.
            raise NegotiationError(f"the ticket is for {service!r}, not an HTTP/ service")
        return Negotiated(
            principal=principal,
            user=user_from_principal(principal, self.realms),
            reply=base64.b64encode(reply).decode() if reply else None,
        )


def _gss_message(err: Exception) -> str:
    """Return a GSS error's text on one line (its major and minor messages)."""
    text = " ".join(str(err).split())
    return text[:300]
