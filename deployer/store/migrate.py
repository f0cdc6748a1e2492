"""Bring a store's schema to the newest migration, safely when several processes open it at once.

The common case, a store already at head, costs one small read. A new, empty database
gets the tables at head straight from the models and is stamped with the head revision
(alembic's own advice for new databases): alembic is not even imported, which a first
command would notice. Otherwise the upgrade runs inside one transaction that
first takes a lock (SQLite: the write lock, ``BEGIN IMMEDIATE``; PostgreSQL: a
transaction-scoped advisory lock), and checks the revision again under it: the
second process to arrive waits, finds the schema at head, and does nothing. Both
databases run DDL in transactions, so a failed upgrade leaves no half-made schema.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import OperationalError

from deployer.core.errors import StoreError
from deployer.store.engine import writer
from deployer.store.models import add_partial_indexes, metadata

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD_REVISION = "0007"  # the newest file in migrations/versions; a test checks they agree
LOCKED_ATTEMPTS = 10  # opening a new SQLite store told "database is locked" (see upgrade)
LOCKED_BACKOFF = 0.05  # seconds, times the attempt: about 2.2 s in all
_ADVISORY_LOCK_KEY = 0x6465706C6F79  # "deploy": serializes migrations across processes on PostgreSQL


# alembic's own table, as alembic creates it, for stamping a new database without alembic.
_ALEMBIC_VERSION = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), primary_key=True, nullable=False),
)


if TYPE_CHECKING:
    from alembic.config import Config


def current_revision(connection: Connection) -> str | None:
    """The schema's alembic revision, read with plain SQL.

    Alembic itself is imported only when a migration has to run: importing it is a large
    part of a short command's start-up and exit.
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
    """Migrate the database behind ``engine`` to head (a no-op when it is there already).

    SQLite's busy timeout makes a process wait while another writes. Yet processes
    making a new database together can still be told "database is locked" at once,
    without waiting (seen once in the test suite, on a loaded machine: three processes
    opening one empty store; the switch into WAL mode and the first write can race
    outside the busy handler). That answer means nothing was done: try again, a few
    times, a little later each time.
    """
    for attempt in range(1, LOCKED_ATTEMPTS + 1):
        try:
            _upgrade(engine)
            return
        except OperationalError as error:
            locked = engine.dialect.name == "sqlite" and "locked" in str(error.orig)
            if not locked or attempt == LOCKED_ATTEMPTS:
                raise
            time.sleep(LOCKED_BACKOFF * attempt)


def _upgrade(engine: Engine) -> None:
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
        if revision is None and _is_new(connection):
            add_partial_indexes()
            metadata.create_all(connection)
            _ALEMBIC_VERSION.create(connection)
            connection.execute(insert(_ALEMBIC_VERSION).values(version_num=HEAD_REVISION))
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


def _is_new(connection: Connection) -> bool:
    """Whether the database holds none of the store's tables (other tables do not matter)."""
    names = set(inspect(connection).get_table_names())
    return not names & {*metadata.tables, _ALEMBIC_VERSION.name}
