"""The metadata database of an instance: Airflow's connection URLs, and making sure it exists.

A spec names its database without a driver (``postgresql://…``, ``mysql://…`` for MySQL and
MariaDB, or ``"sqlite"``) and, better, its password apart as a SecretRef. Airflow opens the
database twice, with a sync and an async driver, so :func:`database_urls` returns both:

=============  ===========================  ===========================
kind           ``sql_alchemy_conn``         ``sql_alchemy_conn_async``
=============  ===========================  ===========================
postgresql     ``postgresql+psycopg://``    ``postgresql+asyncpg://``
mysql/mariadb  ``mysql+pymysql://``         ``mysql+aiomysql://``
sqlite         ``sqlite:///<home>/…db``     ``sqlite+aiosqlite:///…``
               (both ``?timeout=30``)
=============  ===========================  ===========================

asyncpg takes none of libpq's query parameters: ``sslmode`` becomes ``ssl`` in the async URL;
the others stay in the sync URL only (asyncpg's ``timeout`` would need a number, and a URL
gives it a string). The password never appears in a message: every error goes through
:meth:`DatabaseUrls.mask`.

:func:`ensure_database` connects once before ``airflow db migrate`` so that an unreachable
server or a missing database is one clear line (host, port, database) instead of Airflow's
traceback, and creates the database when the spec allows it: PostgreSQL through the ``postgres``
maintenance database, MySQL/MariaDB with ``utf8mb4`` and collation ``utf8mb4_bin`` (Airflow's
ids are compared case-sensitively, and their own columns use ``utf8mb3_bin``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from mlwf_instance._errors import DatabaseUnavailableError as DatabaseUnavailableError

DatabaseKind = Literal["sqlite", "postgresql", "mysql"]

_SYNC_DRIVER = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
_ASYNC_DRIVER = {"postgresql": "postgresql+asyncpg", "mysql": "mysql+aiomysql"}
_SCHEME_KIND: dict[str, DatabaseKind] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
#: libpq query parameters asyncpg knows under another name (others it refuses: dropped).
_ASYNCPG_RENAMED = {"sslmode": "ssl"}
_ASYNCPG_ACCEPTED = frozenset(
    {"ssl", "timeout", "command_timeout", "prepared_statement_cache_size", "server_settings"}
)
#: Seconds a SQLite connection waits for another process's write lock before "database is
#: locked" (SQLite's driver default: 5). Every component of a laptop instance writes the one
#: file; on a loaded machine a writer held the lock longer than 5 s and the scheduler died
#: (seen in the integration tests, two instances on 2 cores).
SQLITE_BUSY_TIMEOUT = 30


def sqlite_url(path: Path, *, driver: str = "sqlite") -> str:
    """The SQLAlchemy URL of the SQLite file ``path``, with :data:`SQLITE_BUSY_TIMEOUT`."""
    return f"{driver}:///{path}?timeout={SQLITE_BUSY_TIMEOUT}"


#: Seconds to wait for the server when checking the database before migrating.
CONNECT_TIMEOUT = 10
#: Character set and collation of a MySQL/MariaDB database mlwf creates.
MYSQL_CHARSET = "utf8mb4"
MYSQL_COLLATION = "utf8mb4_bin"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_$-]{1,63}$")


@dataclass(frozen=True)
class DatabaseUrls:
    """Airflow's two connection URLs of one metadata database (they hold the password)."""

    kind: DatabaseKind
    #: ``[database] sql_alchemy_conn`` (with the password: never print it).
    sync: str = field(repr=False)
    #: ``[database] sql_alchemy_conn_async`` (with the password: never print it).
    async_: str = field(repr=False)
    host: str = ""
    port: int | None = None
    name: str = ""
    #: Secrets to mask in every message (the password, in clear and URL-quoted).
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def display(self) -> str:
        """The sync URL with its password replaced by ``***``: safe to print."""
        if self.kind == "sqlite":
            return self.sync
        from sqlalchemy.engine import make_url

        return self.mask(make_url(self.sync).render_as_string(hide_password=True))

    def mask(self, text: str) -> str:
        """Return ``text`` with every secret of this database replaced by ``***``."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    def where(self) -> str:
        """Say which database this is: ``database "x" on host:port`` (no secret)."""
        if self.kind == "sqlite":
            return f"SQLite database {self.name}"
        port = f":{self.port}" if self.port else ""
        return f'database "{self.name}" on {self.host}{port}'


def database_kind(url: str) -> DatabaseKind:
    """Return ``sqlite``, ``postgresql`` or ``mysql`` (MariaDB too) for a spec's database URL."""
    if url == "sqlite":
        return "sqlite"
    scheme = urlsplit(url).scheme.split("+", 1)[0]
    try:
        return _SCHEME_KIND[scheme]
    except KeyError:
        raise DatabaseUnavailableError(f"unsupported database URL scheme {scheme!r}") from None


def database_urls(url: str, *, password: str | None, sqlite_file: Path) -> DatabaseUrls:
    """Return Airflow's URLs for a spec's ``database.url`` and its resolved ``password``.

    ``url`` is ``"sqlite"`` (then ``sqlite_file``, a file in the home) or a driverless server
    URL; ``password`` (from the spec's SecretRef) replaces a password in the URL.
    """
    from sqlalchemy.engine import make_url

    kind = database_kind(url)
    if kind == "sqlite":
        return DatabaseUrls(
            kind="sqlite",
            sync=sqlite_url(sqlite_file),
            async_=sqlite_url(sqlite_file, driver="sqlite+aiosqlite"),
            name=str(sqlite_file),
        )
    parsed = make_url(url)
    secrets = [s for s in (parsed.password, password) if s]
    if password is not None:
        parsed = parsed.set(password=password)
    sync = parsed.set(drivername=_SYNC_DRIVER[kind])
    async_ = parsed.set(drivername=_ASYNC_DRIVER[kind])
    if kind == "postgresql":
        query: dict[str, str | tuple[str, ...]] = {}
        for key, value in parsed.query.items():
            key = _ASYNCPG_RENAMED.get(key, key)
            if key in _ASYNCPG_ACCEPTED:
                query[key] = value
        async_ = async_.set(query=query)
    sync_text = sync.render_as_string(hide_password=False)
    async_text = async_.render_as_string(hide_password=False)
    # Every spelling of the password that can appear in a message: as given, form-quoted, and
    # exactly as SQLAlchemy quoted it into the URLs (it leaves spaces and "+" alone).
    quoted = [_quote(s) for s in secrets]
    quoted += [p for p in (url_password_text(sync_text), url_password_text(async_text)) if p]
    return DatabaseUrls(
        kind=kind,
        sync=sync_text,
        async_=async_text,
        host=parsed.host or "",
        port=parsed.port or (5432 if kind == "postgresql" else 3306),
        name=parsed.database or "",
        secrets=tuple(dict.fromkeys([*secrets, *quoted])),
    )


def url_password_text(url: str) -> str | None:
    """Return the password of ``url`` exactly as written in it (still quoted), or None."""
    _scheme, sep, rest = url.partition("://")
    userinfo = rest.rpartition("@")[0] if sep else ""
    _user, colon, password = userinfo.partition(":")
    return password if colon and password else None


def _quote(secret: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(secret)


def ensure_database(urls: DatabaseUrls, *, create: bool) -> bool:
    """Make sure the server database exists; return whether it was created now.

    Raises DatabaseUnavailableError naming host, port and database (never the password) when
    the server cannot be reached, or the database is missing and ``create`` is false, or
    creating it fails. SQLite needs nothing: Airflow creates the file.
    """
    if urls.kind == "sqlite":
        return False
    import sqlalchemy as sa

    engine = sa.create_engine(urls.sync, connect_args=_connect_args(urls.sync))
    try:
        with engine.connect():
            return False
    except sa.exc.DBAPIError as err:
        reason = _reason(err)
        missing = _is_missing_database(urls.kind, err)
        if not missing:
            raise DatabaseUnavailableError(
                urls.mask(f"cannot connect to {urls.where()}: {reason}")
            ) from None
        if not create:
            raise DatabaseUnavailableError(
                urls.mask(
                    f"{urls.where()} does not exist; create it, or set "
                    f'"database": {{"create": true}} in the spec to let mlwf create it'
                )
            ) from None
    finally:
        engine.dispose()
    _create(urls)
    return True


def _create(urls: DatabaseUrls) -> None:
    import sqlalchemy as sa

    if not _SAFE_NAME.match(urls.name):
        raise DatabaseUnavailableError(
            f"will not create database {urls.name!r}: use letters, digits, _, $ and - only"
        )
    # URL.set(database=None) keeps the database: None means "unchanged" there.
    server = sa.make_url(urls.sync)._replace(
        database="postgres" if urls.kind == "postgresql" else None
    )
    if urls.kind == "postgresql":
        statement = f"CREATE DATABASE \"{urls.name}\" ENCODING 'UTF8'"
    else:
        statement = (
            f"CREATE DATABASE IF NOT EXISTS `{urls.name}` "
            f"CHARACTER SET {MYSQL_CHARSET} COLLATE {MYSQL_COLLATION}"
        )
    admin = sa.create_engine(
        server, isolation_level="AUTOCOMMIT", connect_args=_connect_args(urls.sync)
    )
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(statement))
    except sa.exc.DBAPIError as err:
        if urls.kind == "postgresql" and getattr(err.orig, "sqlstate", None) == "42P04":
            return  # created meanwhile by someone else: fine
        raise DatabaseUnavailableError(
            urls.mask(f"cannot create {urls.where()}: {_reason(err)}")
        ) from None
    finally:
        admin.dispose()


def _connect_args(sync_url: str) -> dict[str, int]:
    """A connect timeout for the check, unless the URL names its own (``?connect_timeout=``)."""
    from sqlalchemy.engine import make_url

    if "connect_timeout" in make_url(sync_url).query:
        return {}
    return {"connect_timeout": CONNECT_TIMEOUT}


def _reason(err: Exception) -> str:
    orig = getattr(err, "orig", None) or err
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _is_missing_database(kind: DatabaseKind, err: Exception) -> bool:
    orig = getattr(err, "orig", None)
    if kind == "postgresql":
        # psycopg reports the server's FATAL with sqlstate 3D000 (invalid_catalog_name).
        if getattr(orig, "sqlstate", None) == "3D000":
            return True
        return 'database "' in str(orig) and "does not exist" in str(orig)
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    return len(args) > 0 and args[0] == 1049  # ER_BAD_DB_ERROR: Unknown database
