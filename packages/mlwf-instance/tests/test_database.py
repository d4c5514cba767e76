"""The metadata database: Airflow's sync and async URLs, and checking or creating it before migrating."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from mlwf_instance._database import DatabaseUnavailableError, database_urls, ensure_database
from mlwf_testsupport import database_exists, free_port, require_service

SECRET = "s3cr:t/pw@x"


def test_postgresql_urls_carry_drivers_password_and_asyncpg_parameters(tmp_path: Path) -> None:
    """Issue 11: a postgresql:// spec URL becomes psycopg and asyncpg URLs with the SecretRef's password, sslmode renamed for asyncpg."""
    urls = database_urls(
        "postgresql://team@db.example:6543/airflow?sslmode=require&application_name=x",
        password=SECRET,
        sqlite_file=tmp_path / "a.db",
    )
    sync, async_ = sa.make_url(urls.sync), sa.make_url(urls.async_)
    assert (sync.drivername, async_.drivername) == ("postgresql+psycopg", "postgresql+asyncpg")
    assert sync.password == async_.password == SECRET
    assert dict(sync.query) == {"sslmode": "require", "application_name": "x"}
    assert dict(async_.query) == {"ssl": "require"}
    assert (urls.host, urls.port, urls.name) == ("db.example", 6543, "airflow")
    assert SECRET not in urls.display and "***" in urls.display
    assert SECRET not in repr(urls)


def test_mysql_and_mariadb_urls_use_pymysql_and_aiomysql(tmp_path: Path) -> None:
    """Issue 11: mysql:// and mariadb:// become mysql+pymysql (sync) and mysql+aiomysql (async) with port 3306 by default."""
    for scheme in ("mysql", "mariadb"):
        urls = database_urls(f"{scheme}://root@127.0.0.1/af", password=None, sqlite_file=tmp_path)
        assert urls.kind == "mysql"
        assert urls.sync == "mysql+pymysql://root@127.0.0.1/af"
        assert urls.async_ == "mysql+aiomysql://root@127.0.0.1/af"
        assert urls.where() == 'database "af" on 127.0.0.1:3306'


def test_sqlite_is_a_file_in_the_home(tmp_path: Path) -> None:
    """Issue 11: database "sqlite" is the home's file, opened with aiosqlite for async."""
    urls = database_urls("sqlite", password=None, sqlite_file=tmp_path / "airflow.db")
    assert urls.sync == f"sqlite:///{tmp_path}/airflow.db?timeout=30"
    assert urls.async_ == f"sqlite+aiosqlite:///{tmp_path}/airflow.db?timeout=30"
    assert ensure_database(urls, create=False) is False


def _server_url(kind: str, name: str, password: str | None = None) -> str:
    if kind == "postgresql":
        return f"postgresql://postgres@127.0.0.1:5432/{name}"
    return f"mysql://root@127.0.0.1:3306/{name}"


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_missing_database_is_named_or_created(kind: str, tmp_path: Path) -> None:
    """Issue 11: a missing database is a one-line error naming host, port and database; with create it is created (utf8mb4_bin on MariaDB)."""
    name = f"mlwf_rt_{uuid.uuid4().hex[:10]}"
    urls = database_urls(_server_url(kind, name), password=None, sqlite_file=tmp_path)
    try:
        with pytest.raises(DatabaseUnavailableError) as missing:
            ensure_database(urls, create=False)
    except DatabaseUnavailableError as err:  # pragma: no cover (server down)
        require_service(kind, str(err))
    message = str(missing.value)
    assert f'database "{name}" on 127.0.0.1:' in message and "does not exist" in message
    assert '"create": true' in message and "\n" not in message
    try:
        assert ensure_database(urls, create=True) is True
        assert database_exists(kind, name)  # type: ignore[arg-type]
        assert ensure_database(urls, create=True) is False  # exists now: nothing to do
        if kind == "mariadb":
            engine = sa.create_engine(urls.sync)
            with engine.connect() as conn:
                collation = conn.execute(
                    sa.text(
                        "SELECT default_collation_name FROM information_schema.schemata "
                        "WHERE schema_name = :n"
                    ),
                    {"n": name},
                ).scalar()
            engine.dispose()
            assert collation == "utf8mb4_bin"
    finally:
        admin = sa.create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
            if kind == "postgresql"
            else "mysql+pymysql://root@127.0.0.1:3306/",
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            quoted = f'"{name}"' if kind == "postgresql" else f"`{name}`"
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
        admin.dispose()


def test_unreachable_server_is_named_without_the_password(tmp_path: Path) -> None:
    """Issue 11: a server nobody listens on gives an error naming host, port and database, never the password."""
    port = free_port()
    urls = database_urls(
        f"postgresql://team@127.0.0.1:{port}/airflow", password=SECRET, sqlite_file=tmp_path
    )
    with pytest.raises(DatabaseUnavailableError) as err:
        ensure_database(urls, create=True)
    message = str(err.value)
    assert f'cannot connect to database "airflow" on 127.0.0.1:{port}' in message
    assert SECRET not in message


def test_every_allowed_postgresql_query_parameter_connects_with_both_drivers(
    postgres_url: str, tmp_path: Path
) -> None:
    """The query parameters a spec may give reach a real server through psycopg and asyncpg."""
    import asyncio

    from mlwf_instance import parse_spec
    from sqlalchemy.ext.asyncio import create_async_engine

    url = postgres_url.replace("+psycopg", "") + (
        "?sslmode=prefer&connect_timeout=7&application_name=mlwf-test"
    )
    parse_spec({"name": "ab", "database": url})  # the spec accepts it
    urls = database_urls(url, password=None, sqlite_file=tmp_path / "a.db")
    engine = sa.create_engine(urls.sync)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("show application_name")).scalar() == "mlwf-test"
    finally:
        engine.dispose()

    async def ping() -> int:
        async_engine = create_async_engine(urls.async_)
        try:
            async with async_engine.connect() as conn:
                return int((await conn.execute(sa.text("select 1"))).scalar_one())
        finally:
            await async_engine.dispose()

    assert asyncio.run(ping()) == 1
    assert ensure_database(urls, create=False) is False


def test_sqlite_connections_wait_30_s_for_a_write_lock(tmp_path: Path) -> None:
    """Both of Airflow's SQLite drivers get the busy timeout from the URL (5 s by default: a
    loaded laptop's scheduler died on "database is locked")."""
    from sqlalchemy.ext.asyncio import create_async_engine

    urls = database_urls("sqlite", password=None, sqlite_file=tmp_path / "airflow.db")
    for engine in (sa.create_engine(urls.sync), create_async_engine(urls.async_)):
        _args, kwargs = engine.dialect.create_connect_args(engine.url)
        assert kwargs["timeout"] == 30
    engine = sa.create_engine(urls.sync)
    try:
        with engine.connect() as conn:  # the URL opens a real file
            assert conn.execute(sa.text("select 1")).scalar() == 1
    finally:
        engine.dispose()
    assert (tmp_path / "airflow.db").exists()
