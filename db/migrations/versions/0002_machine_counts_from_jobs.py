"""machines: drop running and used_cores, which are counted from jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    # Batch mode: SQLite rebuilds the table, PostgreSQL alters it in place.
    with op.batch_alter_table("machines") as batch:
        batch.drop_column("used_cores")
        batch.drop_column("running")


def downgrade():
    with op.batch_alter_table("machines") as batch:
        batch.add_column(sa.Column("running", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("used_cores", sa.Integer(), nullable=False, server_default="0"))
