"""the attempt of each job event; the first answers of creation calls

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14 09:00:00.000000

Existing events keep a null attempt: which attempt made them is not known.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN, no batch: SQLite's batch mode copies and drops the table.
    op.add_column("job_events", sa.Column("attempt", sa.Integer(), nullable=True))
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("caller", "request_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_requests_created", "requests", ["created"], unique=False)


def downgrade():
    op.drop_index("ix_requests_created", table_name="requests")
    op.drop_table("requests")
    op.drop_column("job_events", "attempt")
