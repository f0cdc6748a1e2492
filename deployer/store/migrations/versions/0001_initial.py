"""The initial schema: hosts, deployments, host deployments and steps, version intervals.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_UNFINISHED = sa.text("finished_at IS NULL")
_OPEN = sa.text("until IS NULL")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("app", sa.String(), nullable=False),
        sa.Column("environment", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("datacenter", sa.String(), nullable=False),
        _timestamp("first_seen"),
        _timestamp("retired_at", nullable=True),
        sa.UniqueConstraint("app", "environment", "name", name="uq_hosts_app_environment_name"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("app", sa.String(), nullable=False),
        sa.Column("environment", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("previous_version", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("started_by", sa.String(), nullable=False),
        sa.Column("started_from", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        _timestamp("heartbeat_at"),
        sa.Column("spec_sha256", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("requested_control", sa.String(), nullable=True),
        _timestamp("control_requested_at", nullable=True),
        sa.Column("control_requested_by", sa.String(), nullable=True),
    )
    op.create_index(
        "ix_deployments_app_environment_started", "deployments", ["app", "environment", "started_at"]
    )
    op.create_index(
        "ux_deployments_one_unfinished",
        "deployments",
        ["app", "environment"],
        unique=True,
        sqlite_where=_UNFINISHED,
        postgresql_where=_UNFINISHED,
    )
    op.create_table(
        "host_deployments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "deployment_id",
            sa.String(),
            sa.ForeignKey("deployments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("host_id", sa.Integer(), sa.ForeignKey("hosts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("step", sa.String(), nullable=True),
        _timestamp("started_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("exit_status", sa.Integer(), nullable=True),
        sa.Column("output_tail", sa.Text(), nullable=False),
        sa.Column("version", sa.String(), nullable=True),
        sa.Column("previous_version", sa.String(), nullable=True),
        sa.UniqueConstraint("deployment_id", "host_id", name="uq_host_deployments_deployment_host"),
    )
    op.create_index("ix_host_deployments_host", "host_deployments", ["host_id"])
    op.create_table(
        "host_steps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "host_deployment_id",
            sa.Integer(),
            sa.ForeignKey("host_deployments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        _timestamp("started_at"),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("exit_status", sa.Integer(), nullable=True),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
    )
    op.create_index("ix_host_steps_host_deployment", "host_steps", ["host_deployment_id", "position"])
    op.create_table(
        "version_intervals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host_id", sa.Integer(), sa.ForeignKey("hosts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("app", sa.String(), nullable=False),
        sa.Column("environment", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        _timestamp("since"),
        _timestamp("until", nullable=True),
        sa.Column(
            "deployment_id",
            sa.String(),
            sa.ForeignKey("deployments.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    op.create_index("ix_version_intervals_host_since", "version_intervals", ["host_id", "since", "id"])
    op.create_index(
        "ix_version_intervals_version_since",
        "version_intervals",
        ["app", "environment", "version", "since"],
    )
    op.create_index(
        "ix_version_intervals_open",
        "version_intervals",
        ["app", "environment", "until", "version"],
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )
    op.create_index(
        "ux_version_intervals_one_open",
        "version_intervals",
        ["host_id"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_table("version_intervals")
    op.drop_table("host_steps")
    op.drop_table("host_deployments")
    op.drop_table("deployments")
    op.drop_table("hosts")
