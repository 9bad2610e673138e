"""Migration 0003: existing work belongs to ``local``, existing packages stay shared; and back."""

from sqlalchemy import inspect, text

from db.migrate import downgrade, upgrade

ROWS = (
    "INSERT INTO projects (id, name, description, created) VALUES (1, 'p', '', :t)",
    "INSERT INTO calc_packages (id, name, adapter_name, version, adapter_xml, size, sha256,"
    " ftp_path, created) VALUES (1, 'c', 'a', '1', '<Adapter/>', 1, 'x', '/p', :t)",
    "INSERT INTO jobs (id, project_id, package_id, para_name, state_index, state_name, params,"
    " ncpus, tags, name, meta, environment, state, process, result, attempts, submit_time,"
    " updated) VALUES (1, 1, 1, 'para.xml', 0, '', '{}', 1, '[]', '', '{}', '{}', 'QUEUED',"
    " '{}', '{}', 0, :t, :t)",
)


def test_existing_work_becomes_locals_and_packages_stay_shared(engine):
    upgrade(engine, "0002")
    with engine.begin() as conn:
        for row in ROWS:
            conn.execute(text(row), {"t": "2026-01-01 00:00:00+00:00"})
    upgrade(engine)
    with engine.connect() as conn:
        for table in ("projects", "calc_packages", "jobs"):
            assert conn.execute(text(f"SELECT owner FROM {table}")).scalar() == "local"
        assert conn.execute(text("SELECT shared FROM calc_packages")).scalar()
    assert "users" in inspect(engine).get_table_names()
    downgrade(engine, "0002")
    assert "users" not in inspect(engine).get_table_names()
    assert "owner" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar() == 1
