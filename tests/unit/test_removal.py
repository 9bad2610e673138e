"""Removal and the dispatch it races with, on real databases (SQLite and PostgreSQL), no broker."""

from types import SimpleNamespace

import pytest
from dbsupport import database_url
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from db.migrate import upgrade
from db.models import CalcPackage, Cleanup, Job, Project
from db.session import make_engine, make_sessionmaker
from services.central.storage.jobstore import JobStore
from services.central.storage.removal import Removal, unfinished_message
from services.common.errors import MirrorError


class Files:
    """The file server's one call Removal makes, recorded."""

    def __init__(self):
        self.deleted = []

    def delete_tree(self, remote):
        self.deleted.append(remote)


@pytest.fixture(params=["sqlite", "postgres"])
def parts(request, tmp_path):
    engine = make_engine(database_url(request, tmp_path))
    upgrade(engine)
    Session = make_sessionmaker(engine)
    with Session.begin() as session:
        session.add(Project(id=1, name="p", owner="ann"))
        session.add(
            CalcPackage(
                id=1, name="c", adapter_xml="<x/>", size=1, sha256="0", ftp_path="/c", owner="ann"
            )
        )
    files = Files()
    yield SimpleNamespace(jobs=JobStore(Session), removal=Removal(Session, files), files=files)
    engine.dispose()


def dispatch(parts, count=1):
    states = [SimpleNamespace(index=i, name=f"s{i}", params={"NCPUS": 1}) for i in range(count)]
    return parts.jobs.create(1, 1, "para.xml", states, ["a"], [None] * count, owner="ann")


def count(parts, model):
    with parts.jobs.Session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_deleted_package_takes_no_new_jobs(parts):
    assert parts.removal.delete_package(1, owner="ann") == {"c_id": 1, "name": "c", "version": 1}
    assert parts.files.deleted == ["/packages/1"]
    with pytest.raises(MirrorError, match="calcpackage is not existed , calcpackage : 1"):
        dispatch(parts)
    assert count(parts, Job) == 0


def test_jobs_of_a_deleted_project_are_refused_by_their_foreign_key(parts):
    # jobdispatch.do answers this refusal as the missing project.
    parts.removal.delete_project(1)
    with pytest.raises(IntegrityError):
        dispatch(parts)
    assert count(parts, Job) == 0


def test_someone_elses_project_and_package_are_missing(parts):
    with pytest.raises(MirrorError, match="project is not existed , project : 1"):
        parts.removal.delete_project(1, owner="bob")
    with pytest.raises(MirrorError, match="calcpackage is not existed , calcpackage : 1"):
        parts.removal.delete_package(1, owner="bob")
    assert parts.files.deleted == []


def test_finished_jobs_go_with_their_project_and_their_machine_is_told(parts):
    (queued, built) = dispatch(parts, 2)
    with pytest.raises(
        MirrorError, match=f"project 1 has 2 unfinished job\\(s\\): {queued}, {built};"
    ):
        parts.removal.delete_project(1)
    parts.jobs.cancel_queued(queued, "x")
    with parts.jobs.Session.begin() as session:
        job = session.get(Job, built)
        job.state, job.rid, job.path = "COMPLETED", 3, "/work/job2"
    assert parts.removal.delete_project(1) == {"p_id": 1, "files": [], "jobs": [queued, built]}
    assert count(parts, Job) == 0 and count(parts, Project) == 0
    with parts.jobs.Session() as session:
        assert [(c.job_id, c.rid) for c in session.scalars(select(Cleanup))] == [(built, 3)]
    assert parts.files.deleted == ["/projects/1", f"/jobs/{queued}", f"/jobs/{built}"]


def test_a_long_list_of_jobs_is_cut_short():
    message = unfinished_message("project 1", list(range(1, 14)), "wait")
    assert (
        message
        == "project 1 has 13 unfinished job(s): 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 3 more; wait"
    )
