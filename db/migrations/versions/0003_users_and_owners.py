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
    with op.batch_alter_table("projects") as batch:
        batch.add_column(owner())
    with op.batch_alter_table("calc_packages") as batch:
        batch.add_column(owner())
        batch.add_column(
            sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    packages = sa.table("calc_packages", sa.column("shared", sa.Boolean()))
    op.execute(packages.update().values(shared=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(owner())
        batch.create_index("ix_jobs_owner", ["owner"], unique=False)


def downgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_owner")
        batch.drop_column("owner")
    with op.batch_alter_table("calc_packages") as batch:
        batch.drop_column("shared")
        batch.drop_column("owner")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("owner")
    op.drop_table("users")
