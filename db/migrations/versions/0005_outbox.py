"""the outbox of job ids to publish, pinned jobs, directory cleanups

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-14 09:00:00.000000

``jobs.pinned`` marks jobs dispatched to one machine by rid (they wait for it);
``jobs.published_at`` says when a job's id was last handed to the outbox;
``outbox`` holds the ids still to publish on their machine's queue;
``cleanups`` the deleted jobs whose directories a machine still has to remove.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN, no batch: SQLite's batch mode copies and drops the
    # table, and dropping jobs would cascade to the rows of steps and events.
    op.add_column(
        "jobs", sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("jobs", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("rid", sa.Integer(), nullable=False),
        sa.Column("ncpus", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_job_id", "outbox", ["job_id"], unique=False)
    op.create_table(
        "cleanups",
        sa.Column("job_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rid", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_cleanups_rid", "cleanups", ["rid"], unique=False)


def downgrade():
    op.drop_index("ix_cleanups_rid", table_name="cleanups")
    op.drop_table("cleanups")
    op.drop_index("ix_outbox_job_id", table_name="outbox")
    op.drop_table("outbox")
    # Plain DROP COLUMN (SQLite 3.35 and later), for the same reason.
    op.drop_column("jobs", "published_at")
    op.drop_column("jobs", "pinned")
