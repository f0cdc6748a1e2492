"""Deployments keep the options they were started with, so ``deploy resume`` can carry on,
and their failure budget, so every view (``deploy watch`` too) shows failures against it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("run_options", sa.Text(), nullable=True))
        batch.add_column(sa.Column("failure_budget", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("failure_budget")
        batch.drop_column("run_options")
