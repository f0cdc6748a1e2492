"""Each host's row of a deployment carries a revision, raised whenever the row changes, so a
screen that polls a deployment reads only the rows changed since its last read.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows from before all start at 0: a first read reads every row anyway.
    with op.batch_alter_table("host_deployments") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.create_index("ix_host_deployments_revision", "host_deployments", ["deployment_id", "revision"])


def downgrade() -> None:
    op.drop_index("ix_host_deployments_revision", table_name="host_deployments")
    with op.batch_alter_table("host_deployments") as batch:
        batch.drop_column("revision")
