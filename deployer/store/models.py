"""The tables of the state store (SQLAlchemy 2 declarative models).

Five tables:

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

Changing a table means a new migration in ``migrations/versions/`` as well.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and read back timezone-aware, in ``datetime.UTC``.

    SQLite keeps no zone, so values are stored there as naive UTC text (which sorts
    and compares in time order); PostgreSQL keeps ``timestamptz`` (the store's
    sessions run in UTC). A naive datetime going in is a bug in the caller and
    raises ValueError.

    Reading is on the hot path ("which of 10,000 hosts run V" turns 20,000 values),
    so results skip SQLAlchemy's generic conversion: SQLite's text goes straight to
    ``datetime.fromisoformat`` with the zone appended, about ten times faster.
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


class Base(DeclarativeBase):
    pass


class HostRow(Base):
    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app: Mapped[str] = mapped_column(String)
    environment: Mapped[str] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    address: Mapped[str] = mapped_column(String)
    datacenter: Mapped[str] = mapped_column(String)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (UniqueConstraint("app", "environment", "name", name="uq_hosts_app_environment_name"),)


class DeploymentRow(Base):
    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    app: Mapped[str] = mapped_column(String)
    environment: Mapped[str] = mapped_column(String)
    version: Mapped[str] = mapped_column(String)
    previous_version: Mapped[str | None] = mapped_column(String, nullable=True)
    kind: Mapped[str] = mapped_column(String)  # a DeploymentKind value
    status: Mapped[str] = mapped_column(String)  # a DeploymentStatus value
    started_by: Mapped[str] = mapped_column(String)
    started_from: Mapped[str] = mapped_column(String)
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime)
    spec_sha256: Mapped[str] = mapped_column(String)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_control: Mapped[str | None] = mapped_column(String, nullable=True)  # a ControlAction value
    control_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    control_requested_by: Mapped[str | None] = mapped_column(String, nullable=True)
    # JSON: what the controller was asked to do (spec path, limit, flags), for `deploy resume`
    run_options: Mapped[str | None] = mapped_column(Text, nullable=True)
    # failed hosts tolerated (one more halts); None for deployments recorded before 0002
    failure_budget: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_deployments_app_environment_started", "app", "environment", "started_at"),
        Index(
            "ux_deployments_one_unfinished",
            "app",
            "environment",
            unique=True,
            sqlite_where=text("finished_at IS NULL"),
            postgresql_where=text("finished_at IS NULL"),
        ),
    )


class HostDeploymentRow(Base):
    __tablename__ = "host_deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    wave: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String)  # a HostStatus value
    step: Mapped[str | None] = mapped_column(String, nullable=True)  # a Step value
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_tail: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str | None] = mapped_column(String, nullable=True)
    previous_version: Mapped[str | None] = mapped_column(String, nullable=True)

    __table_args__ = (
        UniqueConstraint("deployment_id", "host_id", name="uq_host_deployments_deployment_host"),
        Index("ix_host_deployments_host", "host_id"),
    )


class HostStepRow(Base):
    __tablename__ = "host_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_deployment_id: Mapped[int] = mapped_column(ForeignKey("host_deployments.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    duration: Mapped[float] = mapped_column(Float)
    exit_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_host_steps_host_deployment", "host_deployment_id", "position"),)


class VersionIntervalRow(Base):
    __tablename__ = "version_intervals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    app: Mapped[str] = mapped_column(String)
    environment: Mapped[str] = mapped_column(String)
    version: Mapped[str] = mapped_column(String)
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    deployment_id: Mapped[str | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True
    )

    __table_args__ = (
        # A host's intervals in time order: "latest interval that started by T" is one seek.
        Index("ix_version_intervals_host_since", "host_id", "since", "id"),
        # One version's intervals in time order: "hosts running V at T".
        Index("ix_version_intervals_version_since", "app", "environment", "version", "since"),
        # What runs now. `until` is always NULL here, but as a column it lets SQLite's planner
        # match `until IS NULL` as an equality and prefer this small index to the one above.
        Index(
            "ix_version_intervals_open",
            "app",
            "environment",
            "until",
            "version",
            sqlite_where=text("until IS NULL"),
            postgresql_where=text("until IS NULL"),
        ),
        Index(
            "ux_version_intervals_one_open",
            "host_id",
            unique=True,
            sqlite_where=text("until IS NULL"),
            postgresql_where=text("until IS NULL"),
        ),
    )
