"""The central providers and the reconciler, over a real SQLite file and a fake publisher."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from db.migrate import upgrade
from db.models import CalcPackage, Machine, Project
from services.central.providers import (
    JOBS_PER_MESSAGE,
    Database,
    QueuePublisher,
    Storage,
)
from services.central.publisher import drain
from services.central.reconciler import Reconciler
from services.central.storage.records import now
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


@pytest.fixture
def database(tmp_path):
    container = Container(
        {
            "DB_URL": f"sqlite:///{tmp_path}/mirror.db",
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
    yield provider
    provider.stop()


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


def reconciler(storage, on_machine_lost):
    fake = FakePublisher()
    host = Reconciler()
    host.db, host.queues = storage, QueuePublisher(fake)
    host.config = {"RECONCILER": {"lost_after": 60, "on_machine_lost": on_machine_lost}}
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
