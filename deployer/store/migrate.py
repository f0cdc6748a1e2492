"""Bring a store's schema to the newest migration, safely when several processes open it at once.

The common case, a store already at head, costs one small read. Otherwise the
upgrade runs inside one transaction that first takes a lock (SQLite: the write
lock, ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock), and
checks the revision again under it: the second process to arrive waits, finds the
schema at head, and does nothing. Both databases run DDL in transactions, so a
failed upgrade leaves no half-made schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, func, inspect, select, text

from deployer.errors import StoreError
from deployer.store.engine import writer

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD_REVISION = "0002"  # the newest file in migrations/versions; a test checks they agree
_ADVISORY_LOCK_KEY = 0x6465706C6F79  # "deploy": serializes migrations across processes on PostgreSQL


if TYPE_CHECKING:
    from alembic.config import Config


def current_revision(connection: Connection) -> str | None:
    """The schema's alembic revision, read with plain SQL.

    Alembic itself is imported only when a migration has to run: importing it costs a
    command like ``deploy status`` about 0.4 s at start and 0.1 s at exit.
    """
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Migrate the database behind ``engine`` to head (a no-op when it is there already)."""
    with engine.connect() as connection:
        revision = current_revision(connection)
        connection.rollback()
    if revision == HEAD_REVISION:
        return
    with writer(engine).connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))
        revision = current_revision(connection)
        if revision == HEAD_REVISION:
            return
        from alembic import command
        from alembic.util.exc import CommandError

        try:
            command.upgrade(alembic_config(connection), "head")
        except CommandError as error:
            # The usual cause: a newer deployer migrated this database past our head.
            raise StoreError(
                f"cannot migrate the state store from revision {revision} to {HEAD_REVISION}: {error}; "
                "is it used by a newer deployer?"
            ) from None
