"""A real OpenLDAP ``slapd`` for tests: its own folder, port and data, stopped by PID.

:func:`slapd_server` writes a ``slapd.conf`` (core, cosine, inetorgperson and nis schemas; an
``mdb`` database; the ``memberof`` overlay, so ``memberOf`` exists and follows ``groupOfNames``
changes made online), loads an LDIF offline with ``slapadd`` and runs ``slapd`` in the
foreground on a free loopback port. ``slapadd`` does not run overlays: the LDIF must carry the
``memberOf`` values of its users itself (:func:`directory_ldif` writes them).

Needs the Debian packages ``slapd`` (and ``ldap-utils`` for humans); without them the test
skips, or fails under ``MLWF_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlwf_testsupport._listen import PORT_ATTEMPTS, PortTakenError, wait_listening
from mlwf_testsupport._ports import free_port
from mlwf_testsupport._services import require_executable, require_service
from mlwf_testsupport.tls import Certificates

#: Where Debian's slapd keeps its schemas and modules.
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class Slapd:
    """A running slapd: its URL, suffix and the administrator's DN and password."""

    url: str
    suffix: str
    admin_dn: str
    admin_password: str
    pid: int
    #: ``ldaps://127.0.0.1:PORT`` when started with ``tls``.
    ldaps_url: str | None = None


@dataclass(frozen=True)
class LdapUser:
    """A person of :func:`directory_ldif`: uid, password, POSIX ids and the groups holding them."""

    uid: str
    password: str
    uid_number: int
    groups: Sequence[str] = ()


def directory_ldif(suffix: str, users: Sequence[LdapUser], groups: Mapping[str, str]) -> str:
    """Return an LDIF of ``ou=people`` and ``ou=groups`` under ``suffix``.

    ``groups`` maps a group name to its kind: ``"groupOfNames"`` (members by DN, mirrored as the
    users' ``memberOf``) or ``"posixGroup"`` (members by ``memberUid``).
    """
    people, teams = f"ou=people,{suffix}", f"ou=groups,{suffix}"
    dc = suffix.split(",")[0].split("=")[1]
    blocks = [
        f"dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\no: {dc}\ndc: {dc}",
        f"dn: {people}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {teams}\nobjectClass: organizationalUnit\nou: groups",
    ]
    for user in users:
        member_of = "".join(
            f"\nmemberOf: cn={group},{teams}"
            for group in user.groups
            if groups.get(group) == "groupOfNames"
        )
        blocks.append(
            f"dn: uid={user.uid},{people}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
            f"uid: {user.uid}\ncn: {user.uid}\nsn: {user.uid}\nuserPassword: {user.password}\n"
            f"uidNumber: {user.uid_number}\ngidNumber: {user.uid_number}\n"
            f"homeDirectory: /home/{user.uid}{member_of}"
        )
    for gid, (group, kind) in enumerate(sorted(groups.items()), start=5000):
        members = [user.uid for user in users if group in user.groups]
        if kind == "groupOfNames":
            # groupOfNames must have a member: an empty group points at the suffix.
            lines = "".join(f"\nmember: uid={uid},{people}" for uid in members) or (
                f"\nmember: {suffix}"
            )
            blocks.append(f"dn: cn={group},{teams}\nobjectClass: groupOfNames\ncn: {group}{lines}")
        elif kind == "posixGroup":
            lines = "".join(f"\nmemberUid: {uid}" for uid in members)
            blocks.append(
                f"dn: cn={group},{teams}\nobjectClass: posixGroup\ncn: {group}\n"
                f"gidNumber: {gid}{lines}"
            )
        else:
            raise ValueError(f"group {group!r}: unknown kind {kind!r}")
    return "\n\n".join(blocks) + "\n"


def _config(
    folder: Path, suffix: str, admin_dn: str, password: str, tls: Certificates | None = None
) -> str:
    schemas = "".join(
        f"include {SCHEMA_DIR / name}.schema\n"
        for name in ("core", "cosine", "inetorgperson", "nis")
    )
    certificates = (
        ""
        if tls is None
        else (
            f"TLSCACertificateFile {tls.ca}\n"
            f"TLSCertificateFile {tls.certificate}\n"
            f"TLSCertificateKeyFile {tls.key}\n"
        )
    )
    return (
        f"{schemas}"
        f"{certificates}"
        f"pidfile {folder / 'slapd.pid'}\n"
        f"modulepath {MODULE_DIR}\n"
        "moduleload back_mdb\n"
        "moduleload memberof\n"
        "database mdb\n"
        "maxsize 10485760\n"
        f'suffix "{suffix}"\n'
        f'rootdn "{admin_dn}"\n'
        f"rootpw {password}\n"
        f"directory {folder / 'db'}\n"
        "overlay memberof\n"
        "memberof-group-oc groupOfNames\n"
        "memberof-member-ad member\n"
        "memberof-memberof-ad memberOf\n"
        "memberof-refint TRUE\n"
        # Anyone may bind (that is how a password is checked) and read the tree but no password.
        "access to attrs=userPassword by self read by anonymous auth by * none\n"
        "access to * by * read\n"
    )


@contextmanager
def slapd_server(
    folder: Path,
    ldif: str,
    *,
    suffix: str = "dc=example,dc=test",
    password: str = "admin-pw",
    log_level: int = 0,
    tls: Certificates | None = None,
) -> Iterator[Slapd]:
    """Run slapd with ``ldif`` loaded, in ``folder``, until the block ends; stop it by PID.

    ``log_level`` is slapd's ``-d`` (256 logs every operation, ``SRCH`` lines for searches)
    into ``folder / "slapd.log"``. With ``tls`` (:func:`mlwf_testsupport.tls.make_certificates`)
    slapd also listens on ``ldaps://`` (``Slapd.ldaps_url``) and offers StartTLS.
    """
    slapd = require_executable("slapd", "slapd")
    slapadd = require_executable("slapadd", "slapd")
    if not (MODULE_DIR / "back_mdb.so").exists() and not any(MODULE_DIR.glob("back_mdb*")):
        require_service("slapd", f"no back_mdb module in {MODULE_DIR}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "db").mkdir(exist_ok=True)
    admin_dn = f"cn=admin,{suffix}"
    conf = folder / "slapd.conf"
    conf.write_text(_config(folder, suffix, admin_dn, password, tls))
    data = folder / "data.ldif"
    data.write_text(ldif)
    subprocess.run(
        [slapadd, "-f", str(conf), "-l", str(data)], check=True, capture_output=True, timeout=60
    )
    log = folder / "slapd.log"
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        urls = [f"ldap://127.0.0.1:{port}"]
        if tls is not None:
            urls.append(f"ldaps://127.0.0.1:{free_port()}")
        with log.open("wb") as out:
            process = subprocess.Popen(
                [slapd, "-f", str(conf), "-h", " ".join(urls), "-d", str(log_level)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            # Listening itself, not only answering: another xdist worker's server may have taken
            # a port before slapd bound it (CI: a "paused" slapd that was not ours answered).
            for url in urls:
                listen_port = int(url.rsplit(":", 1)[1])
                wait_listening(
                    process,
                    listen_port,
                    what="slapd",
                    timeout=START_TIMEOUT,
                    log=log,
                    interval=0.05,
                )
            break
        except PortTakenError:  # slapd -d 0 logs nothing: wait_listening tried the port
            process.wait(timeout=10)
            if attempt == PORT_ATTEMPTS:
                raise
        except BaseException:
            _stop(process)
            raise
    try:
        yield Slapd(
            urls[0],
            suffix,
            admin_dn,
            password,
            process.pid,
            urls[1] if tls is not None else None,
        )
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def paused(server: Slapd) -> Iterator[None]:
    """Pause ``server`` (SIGSTOP) for the block: connections hang as with a dead network.

    Returns only once every thread of slapd is stopped: ``kill`` returns before a thread busy on
    another CPU has stopped, and on a loaded machine such a thread once answered a whole
    request inside the block (CI, 2026-12-06: "DID NOT RAISE").
    """
    import os
    import signal
    import time

    os.kill(server.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while not _all_threads_stopped(server.pid):
        if time.monotonic() > deadline:
            os.kill(server.pid, signal.SIGCONT)
            raise RuntimeError(f"slapd (pid {server.pid}) did not stop within 10 s of SIGSTOP")
        time.sleep(0.01)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


def _all_threads_stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is in the stopped state (``T`` in /proc/<pid>/task/*/stat)."""
    from pathlib import Path

    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # a thread that just ended
        states.append(text[text.rindex(")") + 2])  # the field after "(comm)"
    return bool(states) and all(state == "T" for state in states)
