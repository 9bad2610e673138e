"""JobStore.create in bulk on SQLite and PostgreSQL: every value stored as given, ids in order."""

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from db.models import Job, JobEvent, JobStep, OutboxEntry
from db.session import make_sessionmaker
from services.central.storage.jobstore import JobStore

# Characters that a bulk path must carry untouched: field and row separators,
# escapes, quotes of SQL, JSON and arrays, and text beyond ASCII.
AWKWARD = "a\tb\nc\\d\"e'f\r{g},h NULL \\N é✓"


@pytest.fixture
def store(seeded_engine):
    return JobStore(make_sessionmaker(seeded_engine))


def states(count, **params):
    return [SimpleNamespace(index=i, name=f"s{i}", params={"X": i, **params}) for i in range(count)]


def count(store, model, **where):
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    with store.Session() as session:
        return session.scalar(query)


def test_awkward_values_come_back_as_given(store):
    params = {"NCPUS": 3, "TIME_LIMIT": 2.5, "TEXT": AWKWARD, "NESTED": {"k": [1, None, AWKWARD]}}
    state = SimpleNamespace(index=4, name=AWKWARD, params=params)
    extra = {
        "name": AWKWARD[:50],
        "submission_id": AWKWARD,
        "meta": {"m": AWKWARD, "n": [1.5, True, None]},
        "environment": {"ENV": AWKWARD},
        "workdir": None,
        "stdout_path": "/tmp/out put.txt",
        "stderr_path": None,
    }
    (job_id,) = store.create(
        1, 1, AWKWARD, [state], ["s1", AWKWARD[:20]], [5], ["gpu", AWKWARD], extra=extra
    )
    job = store.get(job_id)
    assert job["state_name"] == AWKWARD and job["para_name"] == AWKWARD
    assert job["params"] == params and job["ncpus"] == 3 and job["time_limit"] == 2.5
    assert job["tags"] == ["gpu", AWKWARD] and job["rid"] == 5
    assert job["name"] == AWKWARD[:50] and job["submission_id"] == AWKWARD
    assert job["metadata"] == extra["meta"] and job["environment"] == extra["environment"]
    assert job["workdir"] is None and job["stdout_path"] == "/tmp/out put.txt"
    assert job["stderr_path"] is None and job["retries"] == 0 and job["slurm"] is None
    assert [s["id"] for s in job["steps"]] == ["s1", AWKWARD[:20]]
    assert store.events(job_id)[0]["message"] == "dispatched"


def test_defaults_fill_the_columns_not_given(store):
    (job_id,) = store.create(1, 1, "para.xml", states(1), ["a"], [None])
    job = store.get(job_id)
    assert job["name"] == "" and job["metadata"] == {} and job["environment"] == {}
    assert job["submission_id"] is None and job["time_limit"] is None and job["ncpus"] == 1
    assert job["owner"] == "local" and job["sweep_id"] is None
    with store.Session() as session:
        row = session.get(Job, job_id)
        assert row.pinned is False and row.published_at is None
        assert row.submit_time == row.updated and row.submit_time.tzinfo is not None


def test_many_jobs_get_ascending_ids_in_state_order(store):
    first = store.create(1, 1, "para.xml", states(3), ["a"], [1, 1, 1])
    placements = [1 if i % 3 else None for i in range(2500)]
    ids = store.create(1, 1, "para.xml", states(2500, NCPUS=2), ["a", "b", "c"], placements)
    assert len(set(ids)) == 2500 and ids == sorted(ids) and ids[0] > max(first)
    with store.Session() as session:
        rows = session.execute(select(Job.id, Job.state_index, Job.rid, Job.published_at))
        by_id = {r.id: r for r in rows}
    assert [by_id[i].state_index for i in ids] == list(range(2500))
    assert [by_id[i].rid for i in ids] == placements
    assert all(
        (by_id[i].published_at is None) == (rid is None)
        for i, rid in zip(ids, placements, strict=True)
    )
    assert count(store, JobStep) == 3 * 1 + 2500 * 3
    assert count(store, JobEvent, state="QUEUED") == 2503
    placed = [i for i, rid in zip(ids, placements, strict=True) if rid is not None]
    with store.Session() as session:
        outbox = session.execute(select(OutboxEntry.job_id, OutboxEntry.rid, OutboxEntry.ncpus))
        entries = {r.job_id: (r.rid, r.ncpus) for r in outbox}
    assert all(entries[i] == (1, 2) for i in placed)
    assert len(entries) == 3 + len(placed)


def test_a_refused_creation_leaves_nothing(store):
    (job_id,) = store.create(1, 1, "", states(1), ["a"], [1], extra={"submission_id": "twice"})
    before = [count(store, m) for m in (Job, JobStep, JobEvent, OutboxEntry)]
    with pytest.raises(IntegrityError):
        store.create(1, 1, "", states(1), ["a"], [1], extra={"submission_id": "twice"})
    with pytest.raises(IntegrityError):
        # Project 2 does not exist: the jobs' foreign key refuses them.
        store.create(2, 1, "para.xml", states(50), ["a"], [1] * 50)
    assert [count(store, m) for m in (Job, JobStep, JobEvent, OutboxEntry)] == before
    assert store.by_submission("twice") == (job_id, "local")
