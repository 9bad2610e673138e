"""sweeps: the jobs of one dispatch as one object, its throttle, automatic retries

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 17:00:00.000000

``sweeps`` holds one row per dispatch (or batch of script submissions);
``jobs.sweep_id`` names it (null for jobs made before sweeps existed);
``jobs.retries`` counts the automatic retries a job used (``MAX_RETRIES``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), server_default="local", nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("package_id", sa.Integer(), nullable=True),
        sa.Column("para_name", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("max_running", sa.Integer(), server_default="0", nullable=False),
        sa.Column("value_counts", sa.JSON(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sweeps_owner", "sweeps", ["owner"], unique=False)
    # Plain ADD COLUMN, no batch: SQLite's batch mode copies and drops the
    # table, and dropping jobs would cascade to the rows of steps and events.
    op.add_column("jobs", sa.Column("sweep_id", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("retries", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_jobs_sweep_state", "jobs", ["sweep_id", "state"], unique=False)


def downgrade():
    op.drop_index("ix_jobs_sweep_state", table_name="jobs")
    # Plain DROP COLUMN (SQLite 3.35 and later), for the same reason.
    op.drop_column("jobs", "retries")
    op.drop_column("jobs", "sweep_id")
    op.drop_index("ix_sweeps_owner", table_name="sweeps")
    op.drop_table("sweeps")
