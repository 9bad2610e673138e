"""The alembic migrations build the schema of db/models.py, and step back down, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from db.migrate import downgrade, upgrade
from db.models import Base


def schema_diff(engine):
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def machine_columns(engine):
    return {c["name"] for c in inspect(engine).get_columns("machines")}


def test_head_matches_the_models(engine):
    upgrade(engine)
    assert schema_diff(engine) == []


def test_machines_keep_no_job_counts_and_the_downgrade_restores_them(engine):
    upgrade(engine, "0001")
    assert {"running", "used_cores"} <= machine_columns(engine)
    upgrade(engine)
    assert not {"running", "used_cores"} & machine_columns(engine)
    downgrade(engine, "0001")
    assert {"running", "used_cores"} <= machine_columns(engine)


def test_sweeps_come_with_0006_and_go_with_its_downgrade(engine):
    upgrade(engine, "0005")
    assert "sweeps" not in inspect(engine).get_table_names()
    upgrade(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert {"sweep_id", "retries"} <= columns
    assert "ix_jobs_sweep_state" in {i["name"] for i in inspect(engine).get_indexes("jobs")}
    assert "value_counts" in {c["name"] for c in inspect(engine).get_columns("sweeps")}
    downgrade(engine, "0005")
    assert "sweeps" not in inspect(engine).get_table_names()
    assert not {"sweep_id", "retries"} & {c["name"] for c in inspect(engine).get_columns("jobs")}
