"""Store fixtures: every store test runs on an SQLite file and on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (trust auth, database ``test``, user
``postgres``). Each test gets a schema of its own, named at random and made the
connection's ``search_path``, so parallel runs never see each other's tables;
it is dropped after the test. The PostgreSQL cases are skipped, saying why, only
when that server cannot be reached.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deployer.store import Store, open_store

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_PG_CONNINFO = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"

StoreFactory = Callable[..., Store]


def _pg_unreachable_reason() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(_PG_CONNINFO):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL on 127.0.0.1:5432 is unreachable: {str(error).strip()}"


@pytest.fixture(scope="session")
def postgres_unreachable() -> str | None:
    """None when the PostgreSQL server answers, else why it does not."""
    return _pg_unreachable_reason()


def pg_schema_url(schema: str) -> str:
    """The test server's URL with ``schema`` first on the search path."""
    return f"{PG_SERVER}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema(postgres_unreachable: str | None) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test; dropped afterwards."""
    if postgres_unreachable:
        pytest.skip(postgres_unreachable)
    import psycopg

    schema = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(_PG_CONNINFO, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with psycopg.connect(_PG_CONNINFO, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database's URL: an SQLite file under tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    schema: str = request.getfixturevalue("pg_schema")
    return pg_schema_url(schema)


@pytest.fixture
def store_factory(store_url: str) -> Iterator[StoreFactory]:
    """Opens stores (each its own connection pool, as another process would) on the test's database.

    Every store it opened is closed after the test, before the database goes away.
    """
    opened: list[Store] = []

    def factory(url: str | None = None, *, stale_after: timedelta | None = None, **options: Any) -> Store:
        if stale_after is not None:
            options["stale_after"] = stale_after
        store = open_store(url or store_url, **options)
        opened.append(store)
        return store

    try:
        yield factory
    finally:
        for store in opened:
            store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """A migrated, empty store on SQLite and on PostgreSQL."""
    return store_factory()
