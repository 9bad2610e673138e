"""package versions: a package registered again under its name is its next version

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30 17:00:00.000000

``calc_packages.package_version`` numbers the registrations of one name by one
owner (1, 2, ...), unique per owner and name. Existing rows are numbered in
the order they were registered (by id).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Plain SQL that SQLite and PostgreSQL both run: each row's rank among the
# rows of its owner and name, oldest first.
BACKFILL = """
UPDATE calc_packages SET package_version = (
    SELECT COUNT(*) FROM calc_packages AS older
    WHERE older.owner = calc_packages.owner
      AND older.name = calc_packages.name
      AND older.id <= calc_packages.id
)
"""


def upgrade():
    # Plain ADD COLUMN, no batch: SQLite's batch mode copies and drops the
    # table, and dropping calc_packages would cascade to the jobs using it.
    op.add_column(
        "calc_packages",
        sa.Column("package_version", sa.Integer(), nullable=False, server_default="1"),
    )
    op.execute(BACKFILL)
    op.create_index(
        "uq_calc_packages_version",
        "calc_packages",
        ["owner", "name", "package_version"],
        unique=True,
    )


def downgrade():
    op.drop_index("uq_calc_packages_version", table_name="calc_packages")
    # Plain DROP COLUMN (SQLite 3.35 and later), for the same reason.
    op.drop_column("calc_packages", "package_version")
