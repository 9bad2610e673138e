"""Run the alembic migrations programmatically (``mirror central`` does it at start)."""

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection=None):
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine, revision="head"):
    """Bring the schema at ``engine`` up to ``revision``."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine, revision="base"):
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)
