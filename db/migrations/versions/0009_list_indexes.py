"""indexes for the job lists: each filter with the id order of the list

Revision ID: 0009
Revises: 0005
Create Date: 2026-11-30 17:00:00.000000

``job.list`` and ``project.getalljob`` answer newest first (``ORDER BY id
DESC``) under one filter, a page at a time (``limit`` and an ``after`` job
id). An index on ``(filter column, id)`` answers a page by reading only its
rows, where an index on the filter column alone makes the database sort
every job of the project or owner first. The two composite indexes on
``project_id`` and ``owner`` replace the single-column ones.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_jobs_project_id": ["project_id", "id"],
    "ix_jobs_owner_id": ["owner", "id"],
    "ix_jobs_state_id": ["state", "id"],
    "ix_jobs_rid_id": ["rid", "id"],
    "ix_jobs_name_id": ["name", "id"],
}


def upgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, "jobs", columns, unique=False)
    op.drop_index("ix_jobs_project", table_name="jobs")
    op.drop_index("ix_jobs_owner", table_name="jobs")


def downgrade():
    op.create_index("ix_jobs_owner", "jobs", ["owner"], unique=False)
    op.create_index("ix_jobs_project", "jobs", ["project_id"], unique=False)
    for name in INDEXES:
        op.drop_index(name, table_name="jobs")
