"""A host's row of a deployment keeps a note: how its outcome was learnt when the controller
did not see it (a probe after a dropped connection, ``deploy reconcile``), and when.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("host_deployments") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("host_deployments") as batch:
        batch.drop_column("note")
