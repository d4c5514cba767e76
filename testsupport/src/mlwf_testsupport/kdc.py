"""A real MIT Kerberos KDC for tests (k5test): a realm, its principals, keytabs and tickets.

:func:`kerberos_realm` starts ``krb5kdc`` on a free block of loopback ports with its own
``krb5.conf`` and database in a temporary folder, and stops it (by PID, through k5test) when the
block ends. Processes that use the realm (a browser, an ``airflow api-server``, a client) get
:attr:`KerberosRealm.env` (``KRB5_CONFIG``, ``KRB5CCNAME``, …); a server also gets
``KRB5_KTNAME`` pointing at its keytab.

Needs Debian's ``krb5-kdc``, ``krb5-admin-server`` and ``krb5-user``; without them the test
skips, or fails under ``MLWF_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlwf_testsupport._services import require_executable

#: k5test's realm uses ports portbase … portbase + 9.
_PORTS = 10
#: Client settings that make a loopback realm work without DNS (SERVICES.md).
LIBDEFAULTS = {"rdns": "false", "dns_canonicalize_hostname": "false", "udp_preference_limit": "1"}


def _free_block(host: str = "127.0.0.1") -> int:
    """Return a port base whose next ``_PORTS`` TCP and UDP ports are free right now."""
    rng = random.SystemRandom()
    for _ in range(200):
        base = rng.randrange(20000, 60000, _PORTS)
        sockets = []
        try:
            for port in range(base, base + _PORTS):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    sock = socket.socket(socket.AF_INET, kind)
                    sockets.append(sock)
                    sock.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no block of 10 free ports found for the KDC")


@dataclass
class KerberosRealm:
    """A running realm: its name, environment for client and server processes, and k5test handle."""

    name: str
    env: Mapping[str, str]
    folder: Path
    handle: Any  # k5test.K5Realm (untyped)

    def add_user(self, user: str, password: str) -> str:
        """Create principal ``user@REALM`` with ``password``; return the principal."""
        principal = f"{user}@{self.name}"
        self.handle.addprinc(principal, password)
        return principal

    def add_service(self, service: str, keytab: Path) -> str:
        """Create ``service@REALM`` (e.g. ``HTTP/localhost``) with a random key into ``keytab``."""
        principal = f"{service}@{self.name}"
        self.handle.addprinc(principal)
        self.handle.extract_keytab(principal, str(keytab))
        keytab.chmod(0o600)
        return principal

    def kinit(self, user: str, password: str, ccache: Path) -> dict[str, str]:
        """Get ``user``'s ticket into ``ccache``; return the environment that holds it."""
        env = {**self.env, "KRB5CCNAME": f"FILE:{ccache}"}
        self.handle.kinit(f"{user}@{self.name}", password, env=env)
        return env


@contextmanager
def kerberos_realm(realm: str = "EXAMPLE.TEST") -> Iterator[KerberosRealm]:
    """Run a KDC for ``realm`` until the block ends (no default user, host key or tickets)."""
    for program in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit"):
        require_executable(program, "kerberos")
    from k5test import K5Realm  # the test dependency; imported here so importing this is free

    handle = K5Realm(
        realm=realm,
        portbase=_free_block(),
        krb5_conf={"libdefaults": dict(LIBDEFAULTS)},
        create_user=False,
        create_host=False,
        get_creds=False,
    )
    try:
        yield KerberosRealm(realm, dict(handle.env), Path(handle.tmpdir), handle)
    finally:
        with suppress(Exception):
            handle.stop()
