"""the Slurm batch job of a job's latest step

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-30 17:00:00.000000

``jobs.slurm`` holds, for jobs of a Slurm-executor machine, the batch job of
the latest step: ``{job_id, nodelist, partition, step}``, and ``jobs.slurm_id``
its Slurm job id (indexed: the NEWT API finds a job by it); null elsewhere.
``machines.slurm`` is a Slurm machine's last sinfo/squeue probe.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN, no batch: SQLite's batch mode would copy and drop jobs.
    op.add_column("jobs", sa.Column("slurm", sa.JSON(), nullable=True))
    op.add_column("jobs", sa.Column("slurm_id", sa.Integer(), nullable=True))
    op.create_index("ix_jobs_slurm_id", "jobs", ["slurm_id"], unique=False)
    op.add_column("machines", sa.Column("slurm", sa.JSON(), nullable=True))


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35 and later), for the same reason.
    op.drop_column("machines", "slurm")
    op.drop_index("ix_jobs_slurm_id", table_name="jobs")
    op.drop_column("jobs", "slurm_id")
    op.drop_column("jobs", "slurm")
