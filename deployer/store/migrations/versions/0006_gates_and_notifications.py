"""Gate checks (each gate's count of checks and last verdict, per deployment) and the
notifications that were dropped after their retries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_checks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "deployment_id", sa.String(), sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("check_count", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("deployment_id", "name", name="uq_gate_checks_deployment_name"),
    )
    op.create_table(
        "dropped_notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "deployment_id", sa.String(), sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("sink", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dropped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
    )
    op.create_index("ix_dropped_notifications_deployment", "dropped_notifications", ["deployment_id"])


def downgrade() -> None:
    op.drop_index("ix_dropped_notifications_deployment", table_name="dropped_notifications")
    op.drop_table("dropped_notifications")
    op.drop_table("gate_checks")
