"""mlwf_testsupport's throwaway PostgreSQL and MariaDB databases, on the machine's real servers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from mlwf_testsupport import DATABASE_KINDS, DatabaseKind, database_exists, throwaway_database
from mlwf_testsupport._databases import database_name


@pytest.mark.parametrize("kind", DATABASE_KINDS)
def test_throwaway_database_is_usable_then_dropped(kind: DatabaseKind) -> None:
    """throwaway_database yields a URL of an empty database that takes DDL and rows, and drops it afterwards."""
    with throwaway_database(kind, "testsupport self-test") as url:
        name = sa.make_url(url).database
        assert name is not None and name.startswith("mlwf_testsupport_self_test_")
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                assert sa.inspect(conn).get_table_names() == []
                conn.execute(sa.text("CREATE TABLE t (k VARCHAR(10) PRIMARY KEY)"))
                conn.execute(sa.text("INSERT INTO t VALUES ('a')"))
            # A connection left inside an open transaction must not keep the database alive.
            leaked = engine.connect()
            leaked.execute(sa.text("SELECT k FROM t")).all()
            assert database_exists(kind, name)
        finally:
            engine.dispose(close=False)
    assert not database_exists(kind, name)


def test_database_names_are_unique_and_safe() -> None:
    """Generated names are fresh each time and hold only lower-case letters, digits and '_'."""
    names = {database_name("Test[with] odd-CHARS/é" * 5) for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert name.replace("_", "").isalnum() and name == name.lower() and len(name) <= 60


def test_fixtures_give_one_database_per_test(pytester: pytest.Pytester) -> None:
    """The postgres_url and mariadb_url fixtures give each test its own database and drop it after."""
    pytester.makepyfile(
        """
        import sqlalchemy as sa
        from mlwf_testsupport import database_exists

        seen = []

        def test_first(postgres_url, mariadb_url):
            seen.extend([("postgresql", postgres_url), ("mariadb", mariadb_url)])
            for url in (postgres_url, mariadb_url):
                engine = sa.create_engine(url)
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                engine.dispose()

        def test_second(postgres_url, mariadb_url):
            assert postgres_url not in dict(seen).values()
            assert mariadb_url not in dict(seen).values()
            for kind, url in seen:
                assert not database_exists(kind, sa.make_url(url).database)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_unreachable_server_skips_or_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that cannot be reached skips the test naming it, and fails it under MLWF_REQUIRE_SERVICES=1."""
    monkeypatch.setenv("MLWF_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:1/")
    pytester.makepyfile("def test_needs_mariadb(mariadb_url):\n    pass\n")
    monkeypatch.delenv("MLWF_REQUIRE_SERVICES", raising=False)
    skipped = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines(["*service 'mariadb' unavailable: cannot create a database at*"])
    monkeypatch.setenv("MLWF_REQUIRE_SERVICES", "1")
    failed = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    failed.assert_outcomes(errors=1)
    failed.stdout.fnmatch_lines(["*MLWF_REQUIRE_SERVICES=1, so this is a failure*"])
