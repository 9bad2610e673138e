"""Job lists a page at a time (``limit`` and an ``after`` job id), on SQLite and PostgreSQL.

The storage layer on real databases (no broker), and the argument checks of
``job.list`` and ``project.getalljob`` over it.
"""

from types import SimpleNamespace

import pytest
from sqlalchemy import inspect

from db.models import Project
from db.session import make_sessionmaker
from services.central.job import JobService
from services.central.project import ProjectService
from services.central.storage.catalog import Catalog
from services.central.storage.jobstore import JobStore
from services.common.errors import MirrorError


@pytest.fixture
def engine(seeded_engine):
    """The seeded database with a second project."""
    with make_sessionmaker(seeded_engine).begin() as session:
        session.add(Project(id=2, name="q"))
    return seeded_engine


@pytest.fixture
def store(engine):
    return JobStore(make_sessionmaker(engine))


def make_jobs(store, p_id, count, rid=7):
    states = [SimpleNamespace(index=i, name=f"s{i}", params={"NCPUS": 1}) for i in range(count)]
    return store.create(p_id, 1, "para.xml", states, ["a"], [rid] * count)


def pages(read, limit):
    """Every page of ``read(limit, after)`` until a short one, as lists of job ids."""
    out, after = [], None
    while True:
        page = [j["job_id"] for j in read(limit, after)]
        out.append(page)
        if len(page) < limit:
            return out
        after = page[-1]


def test_pages_follow_each_other_newest_first_without_gaps_or_repeats(store):
    ids = make_jobs(store, 1, 7)
    make_jobs(store, 2, 3)
    got = pages(lambda limit, after: store.list(p_id=1, limit=limit, after=after), 3)
    assert got == [ids[6:3:-1], ids[3:0:-1], ids[:1]]
    # Without ``after`` the answer is the first page, as before pagination.
    assert [j["job_id"] for j in store.list(p_id=1, limit=3)] == got[0]
    # An exact multiple of the limit ends with an empty page.
    assert pages(lambda limit, after: store.list(p_id=1, limit=limit, after=after), 7) == [
        ids[::-1],
        [],
    ]


def test_every_filter_pages_within_its_own_jobs(store):
    ids = make_jobs(store, 1, 6)
    other = make_jobs(store, 1, 4, rid=8)
    for job_id in ids[::2]:
        store.report(job_id, 7, {"state": "PREPARING"}, ["QUEUED"])
    claimed = ids[::2][::-1]

    def by_state(limit, after):
        return store.list(state="preparing", limit=limit, after=after)

    assert sum(pages(by_state, 2), []) == claimed
    assert (
        sum(pages(lambda lim, aft: store.list(rid=8, limit=lim, after=aft), 3), []) == other[::-1]
    )
    # ``after`` a job outside the filter still cuts by id.
    assert [j["job_id"] for j in store.list(rid=7, after=other[0], limit=100)] == ids[::-1]
    assert [j["job_id"] for j in store.list(rid=8, after=other[2], limit=100)] == other[1::-1]


def test_getalljob_pages_and_answers_every_job_without_them(engine, store):
    ids = make_jobs(store, 1, 5)
    service = ProjectService()
    service.db = SimpleNamespace(jobs=store, catalog=Catalog(store.Session, files=None))
    service.caller = SimpleNamespace(scope=None)
    every = [j["job_id"] for j in ProjectService.getalljob(service, 1)]
    assert every == ids[::-1]
    page = ProjectService.getalljob(service, "1", limit="2", after=str(ids[3]))
    assert [j["job_id"] for j in page] == [ids[2], ids[1]]
    with pytest.raises(MirrorError, match=r"^limit must not be negative, got -1$"):
        ProjectService.getalljob(service, 1, limit=-1)
    with pytest.raises(MirrorError, match=r"^after must be an integer, got 'x'$"):
        ProjectService.getalljob(service, 1, after="x")


def test_job_list_takes_after_and_checks_it(store):
    ids = make_jobs(store, 1, 4)
    service = JobService()
    service.db = SimpleNamespace(jobs=store)
    service.caller = SimpleNamespace(scope=None)
    page = JobService.list(service, p_id=1, limit=2, after=ids[2])
    assert [j["job_id"] for j in page] == [ids[1], ids[0]]
    with pytest.raises(MirrorError, match=r"^after must be an integer, got \[1\]$"):
        JobService.list(service, after=[1])


def test_the_list_filters_have_indexes_in_list_order(engine):
    indexes = {tuple(i["column_names"]) for i in inspect(engine).get_indexes("jobs")}
    for column in ("project_id", "owner", "state", "rid", "name"):
        assert (column, "id") in indexes, column


def test_every_job_without_a_limit_with_or_without_filters(store):
    ids = make_jobs(store, 1, 3) + make_jobs(store, 2, 2)
    assert [j["job_id"] for j in store.list(limit=None)] == ids[::-1]
    assert [j["job_id"] for j in store.list(p_id=2, limit=None, after=ids[4])] == [ids[3]]
    assert [j["job_id"] for j in store.list(state="queued,RUNNING", limit=None)] == ids[::-1]
