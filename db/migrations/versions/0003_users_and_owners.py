"""users; owners of projects, packages and jobs; shared packages

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 09:00:00.000000

Every existing record belongs to the built-in admin ``local``, and every
existing package stays usable by all (an admin's packages are shared).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LOCAL = "local"


def owner():
    return sa.Column("owner", sa.String(length=64), nullable=False, server_default=LOCAL)


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=True),
        sa.Column("password_hash", sa.String(length=300), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_sha256"),
        sqlite_autoincrement=True,
    )
    # Plain ADD COLUMN, no batch: SQLite's batch mode copies and drops the
    # table, and dropping projects would cascade to the rows of jobs.
    op.add_column("projects", owner())
    op.add_column("calc_packages", owner())
    op.add_column(
        "calc_packages",
        sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    packages = sa.table("calc_packages", sa.column("shared", sa.Boolean()))
    op.execute(packages.update().values(shared=True))
    op.add_column("jobs", owner())
    op.create_index("ix_jobs_owner", "jobs", ["owner"], unique=False)


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35 and later), for the same reason.
    op.drop_index("ix_jobs_owner", table_name="jobs")
    op.drop_column("jobs", "owner")
    op.drop_column("calc_packages", "shared")
    op.drop_column("calc_packages", "owner")
    op.drop_column("projects", "owner")
    op.drop_table("users")
