"""SpnegoAcceptor against a real MIT KDC (k5test): tickets accepted, everything else refused clearly."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlwf_auth import (
    KerberosConfigError,
    NegotiationError,
    SpnegoAcceptor,
    user_from_principal,
)
from mlwf_testsupport.kdc import KerberosRealm, kerberos_realm

REALM = "EXAMPLE.TEST"


@pytest.fixture(scope="module")
def realm(gssapi: Any) -> Iterator[KerberosRealm]:
    """A KDC with alice, bob and the service HTTP/localhost (its keytab: http.keytab in the realm's folder)."""
    with kerberos_realm(REALM) as running:
        running.add_user("alice", "alice-pw-1")
        running.add_user("bob", "bob-pw-2")
        running.add_service("HTTP/localhost", running.folder / "http.keytab")
        # The same keytab also holds a non-HTTP service key (the instance's own principal).
        running.add_service("airflow/localhost", running.folder / "http.keytab")
        yield running


@pytest.fixture
def as_alice(realm: KerberosRealm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give this process the realm's configuration and alice's ticket."""
    env = realm.kinit("alice", "alice-pw-1", tmp_path / "ccache")
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def negotiate(gssapi: Any) -> str:
    """Return an ``Authorization`` value for HTTP@localhost from the current ticket."""
    name = gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service)
    token = gssapi.SecurityContext(name=name, usage="initiate").step()
    return "Negotiate " + base64.b64encode(token).decode()


@pytest.fixture
def acceptor(realm: KerberosRealm) -> SpnegoAcceptor:
    """An acceptor with the HTTP/localhost keytab for the realm."""
    return SpnegoAcceptor(realm.folder / "http.keytab", realms={REALM})


def test_a_ticket_holder_is_recognized(
    gssapi: Any, as_alice: None, acceptor: SpnegoAcceptor
) -> None:
    """Issue 13: a Negotiate header made from alice's ticket gives alice@EXAMPLE.TEST → user alice."""
    negotiated = acceptor.accept(negotiate(gssapi))
    assert (negotiated.principal, negotiated.user) == (f"alice@{REALM}", "alice")
    assert negotiated.www_authenticate is None or negotiated.www_authenticate.startswith(
        "Negotiate "
    )


def test_a_ticket_for_another_service_of_the_keytab_is_refused(
    gssapi: Any, as_alice: None, acceptor: SpnegoAcceptor
) -> None:
    """A ticket for airflow/localhost (in the same keytab) is no web login: only HTTP/ services count."""
    name = gssapi.Name("airflow@localhost", gssapi.NameType.hostbased_service)
    token = gssapi.SecurityContext(name=name, usage="initiate").step()
    with pytest.raises(NegotiationError, match="not an HTTP/ service"):
        acceptor.accept("Negotiate " + base64.b64encode(token).decode())


def test_a_replayed_token_is_refused(gssapi: Any, as_alice: None, acceptor: SpnegoAcceptor) -> None:
    """Issue 13: the same Negotiate token sent twice is refused the second time (replay cache)."""
    header = negotiate(gssapi)
    acceptor.accept(header)
    with pytest.raises(NegotiationError, match="refused"):
        acceptor.accept(header)


def test_another_realm_is_refused(gssapi: Any, as_alice: None, realm: KerberosRealm) -> None:
    """Issue 13: a valid ticket whose realm is not among the accepted realms is refused."""
    other = SpnegoAcceptor(realm.folder / "http.keytab", realms={"OTHER.TEST"})
    with pytest.raises(NegotiationError, match=r"realm EXAMPLE\.TEST is not accepted"):
        other.accept(negotiate(gssapi))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "no Authorization header"),
        ("Basic YWxpY2U6cHc=", "not a Negotiate authorization"),
        ("Negotiate", "not a Negotiate authorization"),
        ("Negotiate !!!not-base64!!!", "not base64"),
        ("Negotiate " + base64.b64encode(b"\x60\x05garbage").decode(), "refused"),
        ("Negotiate " + "A" * 70000, "over 65536 bytes"),
    ],
)
def test_bad_headers_are_refused_with_a_reason(
    acceptor: SpnegoAcceptor, header: str | None, message: str
) -> None:
    """Issue 13: a missing, foreign, malformed, oversized or forged Negotiate header is a NegotiationError saying why."""
    with pytest.raises(NegotiationError, match=message):
        acceptor.accept(header)


def test_keytab_problems_fail_at_start_naming_the_setting(
    gssapi: Any, realm: KerberosRealm, tmp_path: Path
) -> None:
    """Issue 13: a missing, unreadable or empty keytab, or no realm, fails when the acceptor is built."""
    setting = "[mlwf_auth] keytab"
    with pytest.raises(
        KerberosConfigError, match=r"\[mlwf_auth\] keytab: .*missing.keytab: no such file"
    ):
        SpnegoAcceptor(tmp_path / "missing.keytab", realms={REALM}, setting=setting)
    empty = tmp_path / "empty.keytab"
    empty.write_bytes(b"")
    with pytest.raises(KerberosConfigError, match=r"\[mlwf_auth\] keytab: .*empty.keytab"):
        SpnegoAcceptor(empty, realms={REALM}, setting=setting)
    with pytest.raises(KerberosConfigError, match="no realm"):
        SpnegoAcceptor(empty, realms=set(), setting=setting)


@pytest.mark.parametrize(
    ("principal", "user", "error"),
    [
        ("alice@EXAMPLE.TEST", "alice", None),
        ("alice@OTHER.TEST", None, "realm OTHER.TEST is not accepted"),
        ("HTTP/localhost@EXAMPLE.TEST", None, "service or has an instance"),
        ("alice/admin@EXAMPLE.TEST", None, "service or has an instance"),
        ("alice", None, "has no realm"),
        ("@EXAMPLE.TEST", None, "has no realm"),
    ],
)
def test_principals_map_to_users_of_accepted_realms(
    principal: str, user: str | None, error: str | None
) -> None:
    """Issue 13: user@REALM maps to user for an accepted realm; other realms, services and instances are refused."""
    if error is None:
        assert user_from_principal(principal, frozenset({REALM})) == user
    else:
        with pytest.raises(NegotiationError, match=error):
            user_from_principal(principal, frozenset({REALM}))
