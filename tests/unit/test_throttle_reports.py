"""A sweep's throttle in the claim and end path (storage/policies.py, transitions.py), on both databases."""

from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from db.models import OutboxEntry, Sweep
from db.session import make_sessionmaker
from services.central.storage.jobstore import JobStore
from services.common.errors import MirrorError

CLAIM = {"state": "PREPARING", "message": "claimed"}
DONE = {"state": "COMPLETED", "message": "done"}


@pytest.fixture
def store(seeded_engine):
    return JobStore(make_sessionmaker(seeded_engine))


def sweep_of(store, count, max_running=0):
    """``(sweep id, job ids)`` of a new sweep of ``count`` jobs on machine 7."""
    states = [SimpleNamespace(index=i, name=f"s{i}", params={"NCPUS": 1}) for i in range(count)]
    ids = store.create(1, 1, "para.xml", states, ["a"], [7] * count, sweep={"p_id": 1, "c_id": 1})
    sweep_id = store.get(ids[0])["sweep_id"]
    throttle(store, sweep_id, max_running)
    with store.Session.begin() as session:
        session.query(OutboxEntry).delete()
    return sweep_id, ids


def throttle(store, sweep_id, max_running):
    with store.Session.begin() as session:
        session.execute(
            update(Sweep.__table__)
            .where(Sweep.__table__.c.id == sweep_id)
            .values(max_running=max_running)
        )


def outbox_jobs(store):
    with store.Session() as session:
        return sorted(session.scalars(select(OutboxEntry.job_id)))


def test_an_unthrottled_sweep_claims_every_job_and_releases_none(store):
    _, ids = sweep_of(store, 3)
    released = []
    out = store.report_many(7, [(i, CLAIM, ["QUEUED"], None) for i in ids], released)
    assert [code for code, _ in out] == [0, 0, 0]
    store.report_many(7, [(i, DONE, None, None) for i in ids], released)
    assert released == [] and outbox_jobs(store) == []


def test_a_throttled_sweep_refuses_claims_past_its_limit_and_releases_on_an_end(store):
    sweep_id, ids = sweep_of(store, 4, max_running=2)
    released = []
    out = store.report_many(7, [(i, CLAIM, ["QUEUED"], None) for i in ids], released)
    assert [code for code, _ in out] == [0, 0, -1, -1]
    assert out[2][1] == f"job {ids[2]} waits: sweep {sweep_id} runs its limit of 2 job(s)"

    store.report(ids[0], 7, DONE, None, None, released)

    # Room for one: the oldest waiting job goes back to the outbox, to be published.
    assert released == [(ids[2], 7, 1)]
    assert outbox_jobs(store) == [ids[2]]
    assert store.report(ids[2], 7, CLAIM, ["QUEUED"])["state"] == "PREPARING"
    with pytest.raises(MirrorError, match="runs its limit of 2"):
        store.report(ids[3], 7, CLAIM, ["QUEUED"])


def test_a_throttle_set_after_dispatch_holds_the_next_claims(store):
    sweep_id, ids = sweep_of(store, 3)
    store.report(ids[0], 7, CLAIM, ["QUEUED"])
    throttle(store, sweep_id, 1)
    with pytest.raises(MirrorError, match="runs its limit of 1"):
        store.report(ids[1], 7, CLAIM, ["QUEUED"])
    throttle(store, sweep_id, 0)
    assert store.report(ids[1], 7, CLAIM, ["QUEUED"])["state"] == "PREPARING"
