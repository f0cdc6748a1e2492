"""Alembic environment of the state store.

The store runs migrations itself (:func:`deployer.store.migrate.upgrade`) and hands
its connection, already inside a locked transaction, through
``config.attributes["connection"]``. Developers making a new revision use
``alembic -c deployer/store/alembic.ini revision -m "..."`` against a scratch
database named by ``sqlalchemy.url`` there or ``DEPLOYER_DB``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from deployer.store.models import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = os.environ.get("DEPLOYER_DB") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set DEPLOYER_DB or sqlalchemy.url to a scratch database")
    engine = create_engine(url)
    with engine.connect() as own_connection:
        context.configure(connection=own_connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")
run_migrations()
