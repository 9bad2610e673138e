"""Placement rules, the outbox and the reconciler's moves, on SQLite and PostgreSQL (no broker)."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from db.migrate import upgrade
from db.models import CalcPackage, Job, Machine, Project
from services.central.providers import Database, QueuePublisher
from services.central.publisher import drain, publish_placed
from services.central.reconciler import Reconciler
from services.central.storage.records import now
from services.central.watch import Watch
from services.common.errors import MirrorError
from services.common.names import queue_name


class Container:
    def __init__(self, config):
        self.config = config


class FakePublisher:
    """Records publishes; ``broken`` makes it raise like a broker that went away."""

    def __init__(self):
        self.calls = []
        self.broken = False

    def publish(self, payload, **kwargs):
        if self.broken:
            raise ConnectionError("broker away")
        self.calls.append((kwargs["routing_key"], [tuple(j) for j in payload["jobs"]]))


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/mirror.db"
    else:
        url = request.getfixturevalue("pg_url")
    container = Container(
        {
            "DB_URL": url,
            "FTP": {
                "host": "127.0.0.1",
                "port": 1,
                "writer": {"user": "w", "password": "w"},
                "public_url": "ftp://r:r@127.0.0.1:1",
            },
            "AGENT": {"heartbeat": 1, "offline_after": 3},
        }
    )
    provider = Database().bind(container, "db")
    provider.setup()
    upgrade(provider.engine)
    storage = provider.get_dependency(worker_ctx=None)
    with storage.catalog.Session.begin() as session:
        session.add(Project(id=1, name="p"))
        session.add(
            CalcPackage(id=1, name="c", adapter_xml="<x/>", size=1, sha256="0", ftp_path="/c")
        )
    yield storage
    provider.stop()


def beat(storage, rid, slots=4, tags=(), autorun=True):
    return storage.machines.heartbeat(rid, f"m{rid}", slots, list(tags), autorun)


def silence(storage, rid, seconds):
    with storage.catalog.Session.begin() as session:
        session.execute(
            update(Machine)
            .where(Machine.rid == rid)
            .values(last_heartbeat=now() - timedelta(seconds=seconds))
        )


def create(storage, placements, ncpus=1, tags=(), pinned=False):
    states = [
        SimpleNamespace(index=i, name=f"s{i}", params={"NCPUS": ncpus})
        for i in range(len(placements))
    ]
    return storage.jobs.create(
        1, 1, "para.xml", states, ["a"], placements, list(tags), pinned=pinned
    )


def reconciler(storage, on_machine_lost="requeue", republish_after=60):
    fake = FakePublisher()
    host = Reconciler()
    host.db, host.queues = storage, QueuePublisher(fake)
    host.config = {
        "RECONCILER": {
            "lost_after": 60,
            "on_machine_lost": on_machine_lost,
            "republish_after": republish_after,
            # No grace: nobody else publishes these rows.
            "outbox_after": 0,
        }
    }
    # Watching for an hour: the grace after a start is over.
    host.watch = Watch(watched=3600)
    return host, fake


def test_unpinned_jobs_go_only_to_online_autorun_machines_that_fit(storage):
    beat(storage, 1, slots=4, autorun=False)  # manual: only jobs sent to it by rid
    beat(storage, 2, slots=2)
    beat(storage, 3, slots=8, tags=["gpu"])
    beat(storage, 4, slots=16)
    silence(storage, 4, 120)  # offline
    assert storage.machines.choose([1, 1], ()) == [3, 3]
    assert storage.machines.choose([4], ()) == [3]
    assert storage.machines.choose([1], ["gpu"]) == [3]
    # None can take 12 cores now (the 16-core machine is offline): the job waits.
    assert storage.machines.choose([12], ()) == [None]
    storage.machines.check_unpinned(12)  # the offline machine could, later
    with pytest.raises(
        MirrorError, match=r"^no resource machine has 32 cores \(the largest has 16\)$"
    ):
        storage.machines.check_unpinned(32)
    with pytest.raises(MirrorError, match="^no resource machine is tagged fpga$"):
        storage.machines.check_unpinned(1, ["fpga"])
    with pytest.raises(
        MirrorError, match=r"^no resource machine tagged gpu has 9 cores \(the largest has 8\)$"
    ):
        storage.machines.check_unpinned(9, ["gpu"])


def test_pinned_dispatch_is_refused_for_an_unknown_or_unfit_machine(storage):
    beat(storage, 1, slots=2, tags=["gpu"], autorun=False)
    storage.machines.check_pinned(1, 2, ["gpu"])
    with pytest.raises(MirrorError, match="^resource machine is not existed , rid : 9$"):
        storage.machines.check_pinned(9, 1)
    with pytest.raises(MirrorError, match="^resource machine 1 has 2 cores; a job needs 3$"):
        storage.machines.check_pinned(1, 3)
    with pytest.raises(MirrorError, match="^resource machine 1 is not tagged big$"):
        storage.machines.check_pinned(1, 1, ["big"])


def test_placed_jobs_enter_the_outbox_with_their_rows_and_leave_it_once_published(storage):
    beat(storage, 1)
    fake = FakePublisher()
    queues = QueuePublisher(fake)
    ids = create(storage, [1, 1, None], ncpus=2)
    # The unplaced job has no row: it is published when the reconciler places it.
    assert [(j, r, n) for _, j, r, n in storage.outbox.pending()] == [(i, 1, 2) for i in ids[:2]]
    entries = [(i, 1, 2) for i in ids[:2]]
    fake.broken = True
    assert not publish_placed(storage, queues, entries)
    assert storage.outbox.count() == 2
    # A later drain (the reconciler's timer, or a central started again) publishes
    # them once they are older than the placer's own publish takes.
    fake.broken = False
    assert drain(storage, queues, min_age=60) == 0 and fake.calls == []
    assert drain(storage, queues) == 2
    assert fake.calls == [(queue_name(1), [(ids[0], 2), (ids[1], 2)])]
    assert storage.outbox.count() == 0
    assert drain(storage, queues) == 0
    ids2 = create(storage, [1])
    assert publish_placed(storage, queues, [(ids2[0], 1, 1)])
    assert storage.outbox.count() == 0 and fake.calls[-1] == (queue_name(1), [(ids2[0], 1)])


def test_waiting_jobs_are_placed_with_their_own_cores_and_tags(storage):
    beat(storage, 1, slots=1)
    beat(storage, 2, slots=4, tags=["gpu"])
    big = create(storage, [None], ncpus=2)
    tagged = create(storage, [None], tags=["gpu"])
    small = create(storage, [None])
    host, fake = reconciler(storage)
    host.reconcile()
    rids = {j: storage.jobs.get(j)["rid"] for j in big + tagged + small}
    assert rids[big[0]] == 2 and rids[tagged[0]] == 2
    assert rids[small[0]] in (1, 2)
    published = {job_id: rid for key, jobs in fake.calls for job_id, _ in jobs for rid in [key]}
    assert published == {j: queue_name(r) for j, r in rids.items()}
    assert storage.outbox.count() == 0


def test_a_lost_machine_moves_its_queued_jobs_and_pinned_ones_wait(storage):
    beat(storage, 1)
    beat(storage, 9)
    moving = create(storage, [9, 9])
    pinned = create(storage, [9], pinned=True)
    claimed = create(storage, [9])[0]
    storage.jobs.report(claimed, 9, {"state": "PREPARING"}, ["QUEUED"])
    silence(storage, 9, 120)
    host, fake = reconciler(storage)
    drain(storage, host.queues)
    fake.calls.clear()
    host.reconcile()
    for job_id in [*moving, claimed]:
        job = storage.jobs.get(job_id)
        assert (job["state"], job["rid"]) == ("QUEUED", 1)
    assert {j for _, jobs in fake.calls for j, _ in jobs} == {*moving, claimed}
    assert {key for key, _ in fake.calls} == {queue_name(1)}
    assert storage.jobs.events(moving[0])[-1]["message"] == (
        "resource machine 9 stopped sending heartbeats; placed again"
    )
    job = storage.jobs.get(pinned[0])
    assert (job["state"], job["rid"]) == ("QUEUED", 9)
    reason = storage.machines.waiting(pinned[0])
    assert reason.startswith("pinned to resource machine 9, which is offline (last heartbeat ")
    health = storage.machines.ruok(9, timedelta(seconds=60))
    assert health["waiting_jobs"] == pinned
    assert health["waiting"].startswith("1 pinned job(s) wait for this machine: offline")
    assert storage.machines.ruok(1, timedelta(seconds=60))["waiting"] is None
    # The machine comes back: nothing waits any more.
    beat(storage, 9)
    assert storage.machines.ruok(9, timedelta(seconds=60))["waiting_jobs"] == []


def test_a_claimed_pinned_job_of_a_lost_machine_waits_for_it_in_the_outbox(storage):
    beat(storage, 1)
    beat(storage, 9)
    (job_id,) = create(storage, [9], pinned=True)
    storage.jobs.report(job_id, 9, {"state": "PREPARING"}, ["QUEUED"])
    silence(storage, 9, 120)
    host, fake = reconciler(storage)
    drain(storage, host.queues)
    fake.calls.clear()
    host.reconcile()
    job = storage.jobs.get(job_id)
    assert (job["state"], job["rid"]) == ("QUEUED", 9)
    # Published on its own machine's durable queue, where the agent finds it when back.
    assert fake.calls == [(queue_name(9), [(job_id, 1)])]


def test_with_on_machine_lost_fail_the_unpinned_jobs_fail(storage):
    beat(storage, 1)
    beat(storage, 9)
    (queued,) = create(storage, [9])
    (pinned,) = create(storage, [9], pinned=True)
    silence(storage, 9, 120)
    host, _ = reconciler(storage, on_machine_lost="fail")
    host.reconcile()
    job = storage.jobs.get(queued)
    assert job["state"] == "FAILED"
    assert job["error"] == "resource machine 9 stopped sending heartbeats"
    assert storage.jobs.get(pinned)["state"] == "QUEUED"


def test_jobs_queued_long_ago_on_online_autorun_machines_are_published_again(storage):
    beat(storage, 1)
    beat(storage, 2, autorun=False)
    old, manual = create(storage, [1]), create(storage, [2], pinned=True)
    create(storage, [1])  # fresh: published a moment ago
    host, fake = reconciler(storage, republish_after=60)
    drain(storage, host.queues)
    fake.calls.clear()
    with storage.catalog.Session.begin() as session:
        session.execute(
            update(Job)
            .where(Job.id.in_(old + manual))
            .values(published_at=now() - timedelta(seconds=120))
        )
    host.reconcile()
    # The manual machine reads no queue; the fresh job is not due yet.
    assert fake.calls == [(queue_name(1), [(old[0], 1)])]
    host.reconcile()
    assert len(fake.calls) == 1


def test_central_deletes_queued_and_finished_jobs_and_the_machine_cleans_later(storage):
    beat(storage, 1)
    queued, running, done = create(storage, [1, 1, 1])
    for job_id in (running, done):
        storage.jobs.report(job_id, 1, {"state": "PREPARING", "path": f"/w/{job_id}"}, ["QUEUED"])
    storage.jobs.report(done, 1, {"state": "FAILED", "error": "x"})
    with pytest.raises(MirrorError, match="QUEUED"):
        storage.jobs.remove(queued, states=["COMPLETED", "FAILED", "KILLED"])
    storage.jobs.cancel_queued(queued, "cancelled to be deleted")
    storage.jobs.remove(queued, states=["KILLED"])
    with pytest.raises(MirrorError, match=f"^job {running} is PREPARING; its resource machine 1"):
        storage.jobs.remove(running, states=["FAILED"])
    storage.jobs.remove(done, states=["FAILED"])
    # Only the job with a directory needs the machine.
    assert beat(storage, 1) == [done]
    storage.machines.cleaned(1, [done])
    assert beat(storage, 1) == []
