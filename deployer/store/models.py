"""The tables of the state store (SQLAlchemy 2 Core tables).

Seven tables:

- ``hosts``: each host known for an app+environment, with ``retired_at`` once it
  left the inventory.
- ``deployments``: one row per deployment. The partial unique index
  ``ux_deployments_one_unfinished`` on (app, environment) WHERE finished_at IS NULL
  is the lock: a second unfinished deployment of the same app+environment cannot be
  inserted, by any process, on SQLite and PostgreSQL alike.
- ``host_deployments`` and ``host_steps``: each host's part in a deployment, and its steps.
- ``version_intervals``: each host's version history as half-open intervals
  [since, until), until NULL while the host still runs it. At most one open interval
  per host (``ux_version_intervals_one_open``). "What ran where at T" is answered
  from ``ix_version_intervals_host_since`` (one index seek per host) or, for one
  version, from ``ix_version_intervals_version_since``.
- ``gate_checks``: each gate of a deployment: how often it was checked, its last verdict.
- ``dropped_notifications``: notifications given up after their retries.

Changing a table means a new migration in ``migrations/versions/`` as well.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and read back timezone-aware, in ``datetime.UTC``.

    SQLite keeps no zone, so values are stored there as naive UTC text (which sorts
    and compares in time order); PostgreSQL keeps ``timestamptz`` (the store's
    sessions run in UTC). A naive datetime going in is a bug in the caller and
    raises ValueError.

    Reading is on the hot path ("which of 10,000 hosts run V" turns 20,000 values),
    so results skip SQLAlchemy's generic conversion: SQLite's text goes straight to
    ``datetime.fromisoformat`` with the zone appended, much faster (bench/store.py).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], datetime | None]:
        return _utc_from_sqlite_text if dialect.name == "sqlite" else _utc_from_datetime


def _utc_from_sqlite_text(value: str | None) -> datetime | None:
    # Stored by SQLAlchemy as "2026-11-27 18:30:00.000000", naive UTC.
    return None if value is None else datetime.fromisoformat(value + "+00:00")


def _utc_from_datetime(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The tables. Plain SQLAlchemy Core: the store reads and writes rows with Core
# statements only, so the ORM (about an eighth of a second of every command's start-up)
# is never imported.
metadata = MetaData()

hosts = Table(
    "hosts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String, nullable=False),
    Column("environment", String, nullable=False),
    Column("name", String, nullable=False),
    Column("address", String, nullable=False),
    Column("datacenter", String, nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("retired_at", UtcDateTime),
    UniqueConstraint("app", "environment", "name", name="uq_hosts_app_environment_name"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", String, primary_key=True),
    Column("app", String, nullable=False),
    Column("environment", String, nullable=False),
    Column("version", String, nullable=False),
    Column("previous_version", String),
    Column("kind", String, nullable=False),  # a DeploymentKind value
    Column("status", String, nullable=False),  # a DeploymentStatus value
    Column("started_by", String, nullable=False),
    Column("started_from", String, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("heartbeat_at", UtcDateTime, nullable=False),
    Column("spec_sha256", String, nullable=False),
    Column("reason", Text),
    Column("requested_control", String),  # a ControlAction value
    Column("control_requested_at", UtcDateTime),
    Column("control_requested_by", String),
    # JSON: what the controller was asked to do (spec path, limit, flags), for `deploy resume`
    Column("run_options", Text),
    # failed hosts tolerated (one more halts); None for deployments recorded before 0002
    Column("failure_budget", Integer),
    # the deployment this one rolls back (on_halt: rollback); None for every other deployment
    Column("rollback_of", String),
    Index("ix_deployments_app_environment_started", "app", "environment", "started_at"),
    Index("ix_deployments_rollback_of", "rollback_of"),
    # ux_deployments_one_unfinished: see add_partial_indexes
)

host_deployments = Table(
    "host_deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment_id", ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    Column("host_id", ForeignKey("hosts.id", ondelete="CASCADE"), nullable=False),
    Column("wave", Integer),
    Column("status", String, nullable=False),  # a HostStatus value
    Column("step", String),  # a Step value
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("error", Text),
    Column("exit_status", Integer),
    Column("output_tail", Text, nullable=False, default=""),
    Column("version", String),
    Column("previous_version", String),
    # how the outcome was learnt when the controller did not see it ("probe at ...: it succeeded")
    Column("note", Text),
    # when its release was staged ahead of its wave (protocol v2), while it was pending
    Column("staged_at", UtcDateTime),
    # Raised on every change of the row, past every other row of the deployment (see
    # queries.next_revision): a screen polling the deployment reads only what changed.
    Column("revision", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("deployment_id", "host_id", name="uq_host_deployments_deployment_host"),
    Index("ix_host_deployments_host", "host_id"),
    Index("ix_host_deployments_revision", "deployment_id", "revision"),
)

host_steps = Table(
    "host_steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host_deployment_id", ForeignKey("host_deployments.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("step", String, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("duration", Float, nullable=False),
    Column("exit_status", Integer),
    Column("output", Text, nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=1),
    Index("ix_host_steps_host_deployment", "host_deployment_id", "position"),
)

version_intervals = Table(
    "version_intervals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host_id", ForeignKey("hosts.id", ondelete="CASCADE"), nullable=False),
    Column("app", String, nullable=False),
    Column("environment", String, nullable=False),
    Column("version", String, nullable=False),
    Column("since", UtcDateTime, nullable=False),
    Column("until", UtcDateTime),
    Column("deployment_id", ForeignKey("deployments.id", ondelete="SET NULL")),
    # A host's intervals in time order: "latest interval that started by T" is one seek.
    Index("ix_version_intervals_host_since", "host_id", "since", "id"),
    # One version's intervals in time order: "hosts running V at T".
    Index("ix_version_intervals_version_since", "app", "environment", "version", "since"),
    # ix_version_intervals_open, ux_version_intervals_one_open: see add_partial_indexes
)


def add_partial_indexes() -> None:
    """Add the partial indexes to the tables; called where a schema is made or compared.

    Their ``sqlite_where``/``postgresql_where`` make SQLAlchemy import each dialect to check
    the argument, PostgreSQL's included on a SQLite store: a good part of every command's
    start-up, for indexes only creating a schema needs (queries never name them).
    """
    if "ux_deployments_one_unfinished" in {index.name for index in deployments.indexes}:
        return
    unfinished = text("finished_at IS NULL")
    Index(
        "ux_deployments_one_unfinished",
        deployments.c.app,
        deployments.c.environment,
        unique=True,
        sqlite_where=unfinished,
        postgresql_where=unfinished,
    )
    open_interval = text("until IS NULL")
    # What runs now. `until` is always NULL here, but as a column it lets SQLite's planner
    # match `until IS NULL` as an equality and prefer this small index to the one by version.
    Index(
        "ix_version_intervals_open",
        version_intervals.c.app,
        version_intervals.c.environment,
        version_intervals.c.until,
        version_intervals.c.version,
        sqlite_where=open_interval,
        postgresql_where=open_interval,
    )
    Index(
        "ux_version_intervals_one_open",
        version_intervals.c.host_id,
        unique=True,
        sqlite_where=open_interval,
        postgresql_where=open_interval,
    )


gate_checks = Table(
    "gate_checks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment_id", ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    Column("name", String, nullable=False),
    Column("check_count", Integer, nullable=False),
    Column("passed", Boolean, nullable=False),  # the last check's verdict
    Column("message", Text, nullable=False),  # what the last check saw
    Column("checked_at", UtcDateTime, nullable=False),  # when the last check ended
    UniqueConstraint("deployment_id", "name", name="uq_gate_checks_deployment_name"),
)

dropped_notifications = Table(
    "dropped_notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment_id", ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    Column(
        "sink", String, nullable=False
    ),  # "notify[0] webhook ci.example.com" (no path: it may hold a token)
    Column("event", String, nullable=False),
    Column("event_at", UtcDateTime, nullable=False),
    Column("dropped_at", UtcDateTime, nullable=False),
    Column("error", Text, nullable=False),  # the last attempt's failure
    Index("ix_dropped_notifications_deployment", "deployment_id"),
)
