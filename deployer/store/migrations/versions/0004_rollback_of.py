"""A rollback that ``on_halt: rollback`` starts names the deployment it undoes, so the push's
outcome can say what its rollbacks restored (one rollback per version the hosts ran before).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("rollback_of", sa.String(), nullable=True))
    op.create_index("ix_deployments_rollback_of", "deployments", ["rollback_of"])


def downgrade() -> None:
    op.drop_index("ix_deployments_rollback_of", table_name="deployments")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("rollback_of")
