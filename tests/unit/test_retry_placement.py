"""Where an automatic retry goes: another machine with room, on real databases (no broker)."""

from datetime import timedelta
from types import SimpleNamespace

import pytest

from db.session import make_sessionmaker
from services.central.storage.jobstore import JobStore
from services.central.storage.registry import Registry
from services.common.jobstates import QUEUED

AGENT = {"heartbeat": 1, "offline_after": 30}
RETRY = {"MAX_RETRIES": "1", "RETRY_ON": "137"}


@pytest.fixture
def mesh(seeded_engine):
    Session = make_sessionmaker(seeded_engine)
    jobs = JobStore(Session, stale_after=timedelta(seconds=30))
    return SimpleNamespace(jobs=jobs, machines=Registry(Session, jobs, AGENT))


def beat(mesh, rid, slots=2, tags=(), autorun=True):
    mesh.machines.heartbeat(rid, f"m{rid}", slots, list(tags), autorun)


def make_job(mesh, rid=1, params=RETRY, tags=(), pinned=False):
    """One queued job of one step on machine ``rid``, claimed there."""
    state = SimpleNamespace(index=0, name="s0", params=dict(params))
    (job_id,) = mesh.jobs.create(1, 1, "para.xml", [state], ["s"], [rid], tags, pinned=pinned)
    mesh.jobs.report(job_id, rid, {"state": "PREPARING", "message": "claimed"}, [QUEUED])
    return job_id


def fail(mesh, job_id, rid=1, code=137):
    steps = {"s": {"state": "FAILED", "exit_code": code}}
    changes = {"state": "FAILED", "error": f"exit {code}", "steps": steps}
    return mesh.jobs.report(job_id, rid, changes)


def last_message(mesh, job_id):
    return mesh.jobs.events(job_id)[-1]["message"]


def test_a_retry_goes_to_another_machine_with_room(mesh):
    beat(mesh, 1)
    beat(mesh, 2)
    job_id = make_job(mesh)
    job = fail(mesh, job_id)
    assert (job["state"], job["rid"], job["retries"]) == ("QUEUED", 2, 1)
    assert last_message(mesh, job_id) == (
        "retry 1 of 1 after exit code 137 on resource machine 1; placed on resource machine 2"
    )


def test_the_freest_other_machine_wins(mesh):
    for rid in (1, 2, 3):
        beat(mesh, rid, slots=2 if rid != 3 else 4)
    job_id = make_job(mesh)
    assert fail(mesh, job_id)["rid"] == 3


def test_a_full_other_machine_leaves_the_retry_unplaced(mesh):
    beat(mesh, 1)
    beat(mesh, 2, slots=1)
    busy = make_job(mesh, rid=2, params={})
    job_id = make_job(mesh)
    job = fail(mesh, job_id)
    assert (job["state"], job["rid"]) == ("QUEUED", None)
    assert last_message(mesh, job_id) == "retry 1 of 1 after exit code 137 on resource machine 1"
    assert mesh.jobs.get(busy)["state"] == "PREPARING"


def test_one_machine_alone_retries_unplaced_for_the_reconciler(mesh):
    beat(mesh, 1)
    job_id = make_job(mesh)
    assert fail(mesh, job_id)["rid"] is None
    assert mesh.machines.choose([1]) == [1]


@pytest.mark.parametrize(
    "other",
    [{"autorun": False}, {"tags": ["gpu"]}, {"slots": 1, "ncpus": 2}],
    ids=["manual", "untagged", "too-small"],
)
def test_machines_that_cannot_take_it_are_passed_over(mesh, other):
    tags = other.get("tags", [])
    beat(mesh, 1, slots=4, tags=tags)
    beat(mesh, 2, slots=other.get("slots", 2), autorun=other.get("autorun", True))
    params = {**RETRY, "NCPUS": other.get("ncpus", 1)}
    job_id = make_job(mesh, params=params, tags=tags)
    assert fail(mesh, job_id)["rid"] is None


def test_an_offline_machine_is_passed_over(seeded_engine):
    Session = make_sessionmaker(seeded_engine)
    jobs = JobStore(Session, stale_after=timedelta(seconds=0))
    mesh = SimpleNamespace(jobs=jobs, machines=Registry(Session, jobs, AGENT))
    beat(mesh, 2)
    beat(mesh, 1)
    job_id = make_job(mesh)
    assert fail(mesh, job_id)["rid"] is None


def test_a_pinned_job_stays_on_its_machine(mesh):
    beat(mesh, 1)
    beat(mesh, 2)
    job_id = make_job(mesh, pinned=True)
    job = fail(mesh, job_id)
    assert (job["state"], job["rid"]) == ("QUEUED", 1)


def test_another_exit_code_is_not_retried(mesh):
    beat(mesh, 1)
    beat(mesh, 2)
    job_id = make_job(mesh)
    job = fail(mesh, job_id, code=3)
    assert (job["state"], job["rid"], job["retries"]) == ("FAILED", 1, 0)
