"""The central providers and the reconciler, over a real SQLite file and a fake publisher."""

from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from db.migrate import upgrade
from db.models import CalcPackage, Machine, Project
from services.central.machine import MachineService
from services.central.providers import (
    JOBS_PER_MESSAGE,
    Database,
    QueuePublisher,
    Storage,
)
from services.central.publisher import drain
from services.central.reconciler import Reconciler
from services.central.storage.records import now
from services.central.watch import Watch
from services.common.names import JOBS_EXCHANGE, queue_name


class Container:
    """What a provider reads of its nameko container: the config."""

    def __init__(self, config):
        self.config = config


class FakePublisher:
    def __init__(self):
        self.calls = []

    def publish(self, payload, **kwargs):
        self.calls.append((payload, kwargs))


def provider(db_url):
    """A ``Database`` provider set up over ``db_url`` (its FTP server is never reached)."""
    container = Container(
        {
            "DB_URL": db_url,
            "FTP": {
                "host": "127.0.0.1",
                "port": 1,
                "writer": {"user": "w", "password": "w"},
                "public_url": "ftp://r:r@127.0.0.1:1",
            },
            "AGENT": {"heartbeat": 1, "offline_after": 3},
        }
    )
    database = Database().bind(container, "db")
    database.setup()
    return database


@pytest.fixture
def database(tmp_path):
    database = provider(f"sqlite:///{tmp_path}/mirror.db")
    upgrade(database.engine)
    yield database
    database.stop()


def test_workers_get_the_storage_not_the_provider(database):
    storage = database.get_dependency(worker_ctx=None)
    assert isinstance(storage, Storage) and not hasattr(storage, "container")
    # One set of wrappers over one engine: the registry counts the store's jobs.
    assert storage.machines.jobs is storage.jobs
    assert storage.submissions.catalog is storage.catalog
    assert database.get_dependency(worker_ctx=None) is storage


def test_job_ids_go_out_in_batches_and_the_queue_is_declared_once():
    fake = FakePublisher()
    jobs = [(job_id, 2) for job_id in range(2 * JOBS_PER_MESSAGE + 1)]
    QueuePublisher(fake).publish(5, jobs)
    assert [len(payload["jobs"]) for payload, _ in fake.calls] == [
        JOBS_PER_MESSAGE,
        JOBS_PER_MESSAGE,
        1,
    ]
    assert [j for payload, _ in fake.calls for j in payload["jobs"]] == [list(j) for j in jobs]
    assert {kw["routing_key"] for _, kw in fake.calls} == {queue_name(5)}
    assert {kw["exchange"].name for _, kw in fake.calls} == {JOBS_EXCHANGE.name}
    assert [[q.name for q in kw["declare"]] for _, kw in fake.calls] == [[queue_name(5)], [], []]


def reconciler(storage, on_machine_lost, watch=None):
    """A reconciler over ``storage``; unless given a ``watch``, one watching for an hour."""
    fake = FakePublisher()
    host = Reconciler()
    host.db, host.queues = storage, QueuePublisher(fake)
    host.config = {"RECONCILER": {"lost_after": 60, "on_machine_lost": on_machine_lost}}
    host.watch = watch or Watch(watched=3600)
    return host, fake


def seed(storage, rids):
    with storage.catalog.Session.begin() as session:
        session.add(Project(id=1, name="p"))
        session.add(
            CalcPackage(id=1, name="c", adapter_xml="<x/>", size=1, sha256="0", ftp_path="/c")
        )
    for rid in rids:
        storage.machines.heartbeat(rid, f"m{rid}", 4, [], True)


def silence(storage, rid, seconds):
    with storage.catalog.Session.begin() as session:
        session.execute(
            update(Machine)
            .where(Machine.rid == rid)
            .values(last_heartbeat=now() - timedelta(seconds=seconds))
        )


def claimed_job(storage, rid):
    state = SimpleNamespace(index=0, name="s", params={"NCPUS": 1})
    (job_id,) = storage.jobs.create(1, 1, "para.xml", [state], ["a"], [rid])
    storage.jobs.report(job_id, rid, {"state": "PREPARING"}, ["QUEUED"])
    return job_id


@pytest.mark.parametrize("on_machine_lost", ["requeue", "fail"])
def test_jobs_of_a_lost_machine_are_queued_again_or_failed(database, on_machine_lost):
    storage = database.get_dependency(worker_ctx=None)
    seed(storage, [1, 2])
    lost_job, kept_job = claimed_job(storage, 1), claimed_job(storage, 2)
    silence(storage, 1, 120)
    host, fake = reconciler(storage, on_machine_lost)
    drain(storage, host.queues)  # the ids published at creation
    fake.calls.clear()
    host.reconcile()
    lost = storage.jobs.get(lost_job)
    if on_machine_lost == "fail":
        assert lost["state"] == "FAILED"
        assert lost["error"] == "resource machine 1 stopped sending heartbeats"
        assert fake.calls == []
    else:
        # Queued again and, in the same pass, placed on the machine still online.
        assert (lost["state"], lost["rid"]) == ("QUEUED", 2)
        assert storage.jobs.events(lost_job)[-1]["message"].endswith("; queued again")
    assert storage.jobs.get(kept_job)["state"] == "PREPARING"
    host.reconcile()
    if on_machine_lost == "fail":
        assert storage.jobs.get(lost_job)["state"] == "FAILED" and fake.calls == []
    else:
        assert storage.jobs.get(lost_job)["rid"] == 2
        assert [(kw["routing_key"], p["jobs"]) for p, kw in fake.calls] == [
            (queue_name(2), [[lost_job, 1]])
        ]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def unreachable_storage(tmp_path):
    """Storage over a database that cannot be opened (its file is a directory)."""
    (tmp_path / "down.db").mkdir()
    down = provider(f"sqlite:///{tmp_path}/down.db")
    yield down.get_dependency(worker_ctx=None)
    down.stop()


def test_no_machine_is_lost_before_the_reconciler_has_watched_for_lost_after(database):
    storage = database.get_dependency(worker_ctx=None)
    seed(storage, [1, 2])
    job_id = claimed_job(storage, 1)
    silence(storage, 1, 120)
    clock = Clock()
    host, _ = reconciler(storage, "requeue", Watch(clock))
    clock.now += 59
    host.reconcile()
    # Silent for 120 s by the database, but only 59 s of them were watched.
    assert (storage.jobs.get(job_id)["state"], storage.jobs.get(job_id)["rid"]) == ("PREPARING", 1)
    clock.now += 1
    host.reconcile()
    assert (storage.jobs.get(job_id)["state"], storage.jobs.get(job_id)["rid"]) == ("QUEUED", 2)


def test_a_database_outage_starts_the_watch_again(database, unreachable_storage):
    storage = database.get_dependency(worker_ctx=None)
    seed(storage, [1, 2])
    job_id = claimed_job(storage, 1)
    clock = Clock()
    host, _ = reconciler(storage, "requeue", Watch(clock, watched=3600))
    # Machine 1 beats until the database goes away, and stays silent after.
    host.db = unreachable_storage
    host.reconcile()
    assert host.watch.watched() == 0 and host.watch.interrupted
    clock.now += 30
    host.reconcile()
    assert host.watch.watched() == 0
    host.db = storage
    silence(storage, 1, 120)
    clock.now += 59
    host.reconcile()
    assert not host.watch.interrupted
    assert storage.jobs.get(job_id)["state"] == "PREPARING"
    clock.now += 1
    host.reconcile()
    assert (storage.jobs.get(job_id)["state"], storage.jobs.get(job_id)["rid"]) == ("QUEUED", 2)


def test_a_heartbeat_the_database_could_not_record_starts_the_watch_again(unreachable_storage):
    clock = Clock()
    service = MachineService()
    service.db, service.watch = unreachable_storage, Watch(clock, watched=3600)
    with pytest.raises(OperationalError):
        service.heartbeat(1, "m1", 4)
    assert service.watch.watched() == 0


def test_a_refused_statement_is_not_an_outage(database):
    storage = database.get_dependency(worker_ctx=None)
    seed(storage, [1])
    clock = Clock()
    host, _ = reconciler(storage, "requeue", Watch(clock, watched=3600))
    host.db = replace(storage, machines=Refusing(storage.machines))
    host.reconcile()
    assert host.watch.watched() == 3600 and not host.watch.interrupted


class Refusing:
    """A registry whose ``silent_for`` fails like a bug would, not like a database away."""

    def __init__(self, machines):
        self.machines = machines

    def silent_for(self, period):
        raise ValueError("not a database outage")

    def __getattr__(self, name):
        return getattr(self.machines, name)


def broker_away():
    raise ConnectionRefusedError("connection refused")


@pytest.mark.parametrize(
    "consumers, heard", [(broker_away, False), (lambda: 0, False), (lambda: 1, True)]
)
def test_no_machine_is_lost_while_heartbeats_cannot_reach_central(database, consumers, heard):
    storage = database.get_dependency(worker_ctx=None)
    seed(storage, [1, 2])
    job_id = claimed_job(storage, 1)
    silence(storage, 1, 120)
    clock = Clock()
    host, _ = reconciler(storage, "requeue", Watch(clock, watched=3600, consumers=consumers))
    host.reconcile()
    job = storage.jobs.get(job_id)
    if heard:
        assert (job["state"], job["rid"]) == ("QUEUED", 2)
        assert host.watch.watched() == 3600 and not host.watch.interrupted
    else:
        # The broker away from central, or nobody consuming heartbeats: the
        # silence is central's deafness, and counts again from now.
        assert (job["state"], job["rid"]) == ("PREPARING", 1)
        assert host.watch.watched() == 0 and host.watch.interrupted


def test_the_broker_is_asked_only_when_a_machine_is_silent(database):
    storage = database.get_dependency(worker_ctx=None)
    seed(storage, [1])
    asked = []
    watch = Watch(Clock(), watched=3600, consumers=lambda: asked.append(1) or 1)
    host, _ = reconciler(storage, "requeue", watch)
    host.reconcile()
    assert asked == []
    silence(storage, 1, 120)
    host.reconcile()
    assert asked == [1]
