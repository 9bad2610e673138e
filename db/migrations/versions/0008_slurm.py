"""the Slurm batch job of a job's latest step

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-30 17:00:00.000000

``jobs.slurm`` holds, for jobs of a Slurm-executor machine, the batch job of
the latest step: ``{job_id, nodelist, partition, step}``; null elsewhere.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN, no batch: SQLite's batch mode would copy and drop jobs.
    op.add_column("jobs", sa.Column("slurm", sa.JSON(), nullable=True))


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35 and later), for the same reason.
    op.drop_column("jobs", "slurm")
