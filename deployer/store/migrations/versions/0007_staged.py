"""When a host's release was staged ahead of its wave (protocol v2).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("host_deployments") as batch:
        batch.add_column(sa.Column("staged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("host_deployments") as batch:
        batch.drop_column("staged_at")
