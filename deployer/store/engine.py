"""Engines for the store: SQLite tuned for several processes at once, or any SQLAlchemy URL.

SQLite runs in WAL mode (readers never block the writer) with a busy timeout
(a writer waits for another process instead of failing). Write transactions start with
``BEGIN IMMEDIATE``: they take the write lock up front, so two processes never
both read, then both try to upgrade to a write and one fail with "database is
locked". Reads use plain (deferred) transactions.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from deployer.core.errors import StoreError

BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "deployer_write"  # execution option that marks a write transaction


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreError(
            f"{url!r} is not a database URL; expected e.g. sqlite:////path/state.db or "
            "postgresql+psycopg://user@host/db"
        ) from None


def display_url(url: URL) -> str:
    """The URL as shown in messages: the password hidden."""
    return url.render_as_string(hide_password=True)


def one_line(error: BaseException | None) -> str:
    """A driver's message on one line (PostgreSQL's span several, with hints)."""
    return " ".join(str(error).split())


def is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def build_engine(url: URL) -> Engine:
    """An engine for ``url``; for an SQLite file, its directory is created if missing."""
    options: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
        if is_sqlite_memory(url):
            options["poolclass"] = StaticPool
        else:
            assert url.database is not None
            directory = os.path.dirname(os.path.abspath(url.database))
            try:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            except OSError as error:
                raise StoreError(f"cannot create {directory} for the state store: {error.strerror}") from None
        options["connect_args"] = connect_args
    else:
        options["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **options)
    except (NoSuchModuleError, ImportError) as error:
        raise StoreError(f"no database driver for {display_url(url)}: {error}") from None
    if url.get_backend_name() == "sqlite":
        _tune_sqlite(engine, memory=is_sqlite_memory(url))
    elif url.get_backend_name() == "postgresql":
        _sessions_in_utc(engine)
    return engine


def writer(engine: Engine) -> Engine:
    """``engine`` marked so its transactions take the write lock at BEGIN (SQLite)."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _sessions_in_utc(engine: Engine) -> None:
    """Run PostgreSQL sessions in UTC, so ``timestamptz`` values arrive in UTC, needing no conversion."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET TIME ZONE 'UTC'")
        finally:
            cursor.close()
        dbapi_connection.commit()


def _tune_sqlite(engine: Engine, *, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself, so DDL is transactional
        # and the write lock is taken at the start of a write transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                # In WAL mode NORMAL syncs at checkpoints, not at every commit: a committed
                # write survives the controller being killed (it is in the WAL file), only
                # a power cut may lose the last few. FULL would fsync each of a
                # deployment's many small commits.
                cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")
