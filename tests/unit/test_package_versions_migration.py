"""Migration 0007: existing packages are numbered per owner and name, oldest first; and back."""

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from db.migrate import downgrade, upgrade

PACKAGE = (
    "INSERT INTO calc_packages (id, name, adapter_name, version, adapter_xml, size, sha256,"
    " ftp_path, owner, shared, created)"
    " VALUES (:id, :name, 'a', '1', '<Adapter/>', 1, 'x', '/p', :owner, true, :t)"
)
# id, name, owner, and the version each row must get.
ROWS = (
    (1, "heat", "local", 1),
    (2, "wave", "local", 1),
    (3, "heat", "ann", 1),
    (4, "heat", "local", 2),
    (5, "heat", "ann", 2),
    (6, "heat", "local", 3),
)


def test_existing_packages_are_numbered_and_the_downgrade_drops_the_column(engine):
    upgrade(engine, "0005")
    with engine.begin() as conn:
        for c_id, name, owner, _ in ROWS:
            conn.execute(
                text(PACKAGE),
                {"id": c_id, "name": name, "owner": owner, "t": "2026-01-01 00:00:00+00:00"},
            )
    upgrade(engine, "0007")
    with engine.connect() as conn:
        got = dict(conn.execute(text("SELECT id, package_version FROM calc_packages")).all())
    assert got == {c_id: version for c_id, _, _, version in ROWS}
    # One owner's name and version name one package.
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text("UPDATE calc_packages SET package_version = 1 WHERE id = 4"),
        )
    downgrade(engine, "0005")
    assert "package_version" not in {
        c["name"] for c in inspect(engine).get_columns("calc_packages")
    }
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM calc_packages")).scalar() == len(ROWS)
