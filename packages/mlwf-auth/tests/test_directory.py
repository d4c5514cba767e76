"""LdapDirectory against a real OpenLDAP slapd: groups three ways, the TTL cache, binds, outages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import ldap3
import pytest
from mlwf_auth import (
    DirectorySettings,
    DirectoryUnavailableError,
    LdapDirectory,
    UnknownUserError,
)
from mlwf_testsupport import free_port
from mlwf_testsupport.slapd import LdapUser, Slapd, directory_ldif, paused, slapd_server
from mlwf_testsupport.tls import Certificates, make_certificates

SUFFIX = "dc=example,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
USERS = [
    LdapUser("alice", "alice-pw-1", 1001, ["recsys", "ml", "posix-recsys"]),
    LdapUser("bob", "bob-pw-2", 1002, ["fraud", "ml"]),
    LdapUser("carol", "carol-pw-3", 1003, ["recsys", "posix-recsys"]),
    LdapUser("dave", "dave-pw-4", 1004, []),
]
KINDS = {
    "recsys": "groupOfNames",
    "fraud": "groupOfNames",
    "ml": "groupOfNames",
    "posix-recsys": "posixGroup",
}


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A slapd holding four users in three groupOfNames and one posixGroup."""
    ldif = directory_ldif(SUFFIX, USERS, KINDS)
    with slapd_server(tmp_path_factory.mktemp("slapd"), ldif, suffix=SUFFIX) as server:
        yield server


def settings(server: Slapd, **changes: object) -> DirectorySettings:
    """Return directory settings for ``server`` with ``changes``."""
    base: dict[str, object] = {"url": server.url, "user_base": PEOPLE, "group_base": GROUPS}
    return DirectorySettings(**{**base, **changes})  # type: ignore[arg-type]


def admin(server: Slapd) -> ldap3.Connection:
    """Return a connection bound as the directory's administrator."""
    return ldap3.Connection(
        ldap3.Server(server.url), server.admin_dn, server.admin_password, auto_bind=True
    )


@pytest.mark.parametrize(
    ("style", "alice"),
    [
        ("member_of", {"recsys", "ml"}),
        ("member", {"recsys", "ml"}),
        ("member_uid", {"posix-recsys"}),
    ],
)
def test_groups_come_from_each_style(slapd: Slapd, style: str, alice: set[str]) -> None:
    """Issue 13: memberOf, groupOfNames/member and posixGroup/memberUid each give a user's groups."""
    directory = LdapDirectory(settings(slapd, group_style=style))
    assert directory.groups("alice") == alice
    assert directory.groups("dave") == set()
    with pytest.raises(UnknownUserError, match="'zed': not found"):
        directory.groups("zed")


def test_hostile_names_are_refused_or_escaped(slapd: Slapd) -> None:
    """Issue 13: a name with filter syntax is refused before LDAP; '*' never matches everyone."""
    directory = LdapDirectory(settings(slapd))
    for name in ("*", "alice)(uid=*", "a" * 300, "", "al ice"):
        with pytest.raises(UnknownUserError, match="not a valid user name"):
            directory.groups(name)
    assert directory.queries == 0


def test_a_removed_membership_takes_effect_after_the_ttl(slapd: Slapd) -> None:
    """Issue 13: groups are cached for the TTL (no query), then re-read: a removal shows then."""
    now = [0.0]
    directory = LdapDirectory(settings(slapd, ttl=60), clock=lambda: now[0])
    assert directory.groups("carol") == {"recsys"}
    queries = directory.queries
    with admin(slapd) as conn:
        dn = f"uid=carol,{PEOPLE}"
        assert conn.modify(f"cn=recsys,{GROUPS}", {"member": [(ldap3.MODIFY_DELETE, [dn])]})
        try:
            now[0] = 59.0
            assert directory.groups("carol") == {"recsys"}  # cached: still there
            assert directory.queries == queries
            now[0] = 61.0
            assert directory.groups("carol") == set()  # the memberof overlay followed the change
            assert directory.queries > queries
        finally:
            assert conn.modify(f"cn=recsys,{GROUPS}", {"member": [(ldap3.MODIFY_ADD, [dn])]})


def test_a_disabled_or_deleted_user_is_unknown_at_the_next_refresh(slapd: Slapd) -> None:
    """Issue 13: a user the filter excludes (disabled) or that is gone is unknown once the TTL passes."""
    now = [0.0]
    disabled = "(&(uid={user})(!(description=disabled)))"
    directory = LdapDirectory(settings(slapd, ttl=10, user_filter=disabled), clock=lambda: now[0])
    assert directory.groups("bob") == {"fraud", "ml"}
    with admin(slapd) as conn:
        dn = f"uid=bob,{PEOPLE}"
        assert conn.modify(dn, {"description": [(ldap3.MODIFY_REPLACE, ["disabled"])]})
        try:
            now[0] = 11.0
            with pytest.raises(UnknownUserError, match="'bob': not found"):
                directory.groups("bob")
        finally:
            assert conn.modify(dn, {"description": [(ldap3.MODIFY_DELETE, [])]})
        assert conn.add(
            f"uid=erin,{PEOPLE}",
            ["inetOrgPerson"],
            {"uid": "erin", "cn": "erin", "sn": "erin", "userPassword": "erin-pw"},
        )
        assert directory.groups("erin") == set()
        assert conn.delete(f"uid=erin,{PEOPLE}")
    now[0] = 22.0
    with pytest.raises(UnknownUserError):
        directory.groups("erin")


def test_passwords_are_checked_by_binding_as_the_user(slapd: Slapd) -> None:
    """Issue 13: the right password gives the user with fresh groups; a wrong or empty one gives None."""
    directory = LdapDirectory(settings(slapd))
    user = directory.authenticate("alice", "alice-pw-1")
    assert user is not None and user.dn == f"uid=alice,{PEOPLE}" and user.groups == {"recsys", "ml"}
    assert directory.authenticate("alice", "bob-pw-2") is None
    assert directory.authenticate("alice", "") is None
    with pytest.raises(UnknownUserError):
        directory.authenticate("zed", "x")


def test_an_unreachable_or_hung_server_is_a_clear_error(slapd: Slapd, tmp_path: Path) -> None:
    """Issue 13: no server, a server that stops answering, a refused service bind: DirectoryUnavailableError naming the URL."""
    closed = f"ldap://127.0.0.1:{free_port()}"
    with pytest.raises(DirectoryUnavailableError, match=f"LDAP server {closed} unavailable"):
        LdapDirectory(settings(slapd, url=closed, connect_timeout=1)).check()
    hung = LdapDirectory(settings(slapd, receive_timeout=1, connect_timeout=1))
    hung.check()
    started = time.monotonic()
    with paused(slapd), pytest.raises(DirectoryUnavailableError):
        hung.groups("alice")
    assert time.monotonic() - started < 10
    wrong = LdapDirectory(settings(slapd, bind_dn=slapd.admin_dn, bind_password="wrong"))
    with pytest.raises(DirectoryUnavailableError, match="invalidCredentials"):
        wrong.check()
    assert "wrong" not in repr(wrong.settings)


def test_the_cache_answers_without_ldap_while_fresh(slapd: Slapd) -> None:
    """Issue 13: 1,000 lookups of one user within the TTL make one LDAP search per lookup of a new user."""
    directory = LdapDirectory(settings(slapd, group_style="member"))
    for _ in range(1000):
        directory.groups("alice")
    assert directory.queries == 2  # the user, then the groups holding their DN: once


def test_names_match_exactly_and_groups_only_under_the_group_base(slapd: Slapd) -> None:
    """Issue 13: "ALICE" is not alice (LDAP matches case-insensitively); a memberOf group outside group_base does not count."""
    directory = LdapDirectory(settings(slapd))
    with pytest.raises(UnknownUserError, match="differs"):
        directory.groups("ALICE")
    apps = f"ou=apps,{SUFFIX}"
    with admin(slapd) as conn:
        assert conn.add(apps, ["organizationalUnit"], {"ou": "apps"})
        evil = f"cn=platform,{apps}"
        assert conn.add(
            evil, ["groupOfNames"], {"cn": "platform", "member": [f"uid=alice,{PEOPLE}"]}
        )
        try:
            assert LdapDirectory(settings(slapd)).groups("alice") == {"recsys", "ml"}
            # Without a group base every memberOf counts: the same entry would make alice "platform".
            anywhere = LdapDirectory(settings(slapd, group_base=None))
            assert anywhere.groups("alice") == {"recsys", "ml", "platform"}
        finally:
            assert conn.delete(evil) and conn.delete(apps)


@pytest.fixture(scope="module")
def tls_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Slapd, Certificates]]:
    """A slapd with a certificate for localhost and 127.0.0.1, signed by a throwaway CA."""
    root = tmp_path_factory.mktemp("tls-slapd")
    certificates = make_certificates(root / "certs")
    ldif = directory_ldif(SUFFIX, USERS, KINDS)
    with slapd_server(root / "slapd", ldif, suffix=SUFFIX, tls=certificates) as server:
        yield server, certificates


def test_tls_verifies_the_servers_certificate(
    tls_slapd: tuple[Slapd, Certificates], tmp_path: Path
) -> None:
    """ldaps:// and StartTLS work with the CA that signed the server's certificate, and are refused with another CA, with the system's CAs, and for a name the certificate does not hold."""
    server, certificates = tls_slapd
    assert server.ldaps_url is not None
    trusted = str(certificates.ca)
    for url, start_tls in ((server.ldaps_url, False), (server.url, True)):
        directory = LdapDirectory(
            settings(server, url=url, start_tls=start_tls, ca_certs_file=trusted)
        )
        assert directory.lookup("alice").groups == {"recsys", "ml"}
        assert directory.authenticate("alice", "alice-pw-1") is not None
        assert directory.authenticate("alice", "wrong") is None
    other = make_certificates(tmp_path / "other")
    for ca in (str(other.ca), None):
        for url, start_tls in ((server.ldaps_url, False), (server.url, True)):
            forged = LdapDirectory(settings(server, url=url, start_tls=start_tls, ca_certs_file=ca))
            with pytest.raises(DirectoryUnavailableError, match="certificate verify failed"):
                forged.lookup("alice")
    # A certificate the trusted CA signed, but for another name than the one connected to.
    root = tmp_path / "elsewhere"
    elsewhere = make_certificates(root / "certs", names=("ldap.example.test",))
    ldif = directory_ldif(SUFFIX, USERS, KINDS)
    with slapd_server(root / "slapd", ldif, suffix=SUFFIX, tls=elsewhere) as misnamed:
        assert misnamed.ldaps_url is not None
        right_ca = LdapDirectory(
            settings(misnamed, url=misnamed.ldaps_url, ca_certs_file=str(elsewhere.ca))
        )
        with pytest.raises(DirectoryUnavailableError, match="doesn't match any name"):
            right_ca.lookup("alice")
