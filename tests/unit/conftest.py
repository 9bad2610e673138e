"""Fixtures of the unit tests: an agent runtime over fakes, a seeded central database."""

import pytest
from agent_support import close, runtime
from dbsupport import database_url

from db.migrate import upgrade
from db.models import CalcPackage, Project
from db.session import make_engine, make_sessionmaker


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    """An empty database (not migrated), on SQLite and on PostgreSQL."""
    engine = make_engine(database_url(request, tmp_path))
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def seeded_engine(request, tmp_path):
    """A migrated central database, on SQLite and on PostgreSQL, with project 1 and package 1."""
    engine = make_engine(database_url(request, tmp_path))
    upgrade(engine)
    with make_sessionmaker(engine).begin() as session:
        session.add(Project(id=1, name="p"))
        session.add(
            CalcPackage(id=1, name="c", adapter_xml="<x/>", size=1, sha256="0", ftp_path="/c")
        )
    yield engine
    engine.dispose()


@pytest.fixture
def machine(tmp_path):
    """``start(job, served, **agent)``: a runtime of machine 1 over fakes, closed at the end."""
    made = []

    def start(job, served, **agent):
        made.append(runtime(tmp_path, job, served, **agent))
        return made[-1]

    yield start
    for rt in made:
        close(rt)
