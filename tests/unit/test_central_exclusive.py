"""Two central processes on one database: one reconciler pass at a time, one drainer per outbox row.

Each central is a ``Database`` provider of its own (its own engine and
connections), on the embedded SQLite file and on PostgreSQL, no broker.
"""

import os
import signal
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from db.migrate import upgrade
from db.models import CalcPackage, Project
from services.central.providers import Database, QueuePublisher
from services.central.publisher import drain
from services.central.reconciler import Reconciler
from services.central.watch import Watch
from tests.mesh import ROOT, wait_for


class Container:
    def __init__(self, config):
        self.config = config


class FakePublisher:
    """Records the job ids published; ``during`` runs inside the first publish."""

    def __init__(self, during=None):
        self.ids = []
        self.during = during

    def publish(self, payload, **kwargs):
        if self.during is not None:
            during, self.during = self.during, None
            during()
        self.ids += [job_id for job_id, _ in payload["jobs"]]


def provider(url):
    config = {
        "DB_URL": url,
        "FTP": {
            "host": "127.0.0.1",
            "port": 1,
            "writer": {"user": "w", "password": "w"},
            "public_url": "ftp://r:r@127.0.0.1:1",
        },
        "AGENT": {"heartbeat": 1, "offline_after": 3},
    }
    container = Container(config)
    made = Database().bind(container, "db")
    # bind keeps a weak reference only.
    made.kept_container = container
    made.setup()
    return made


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/mirror.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def centrals(url):
    """The storage of two central processes on one database."""
    first, second = provider(url), provider(url)
    upgrade(first.engine)
    one = first.get_dependency(worker_ctx=None)
    with one.catalog.Session.begin() as session:
        session.add(Project(id=1, name="p"))
        session.add(
            CalcPackage(id=1, name="c", adapter_xml="<x/>", size=1, sha256="0", ftp_path="/c")
        )
    yield one, second.get_dependency(worker_ctx=None)
    first.stop()
    second.stop()


def placed_jobs(storage, count, rid=1):
    """``count`` jobs placed on ``rid``, left in the outbox as a killed placer leaves them."""
    storage.machines.heartbeat(rid, f"m{rid}", 4, [], True)
    states = [SimpleNamespace(index=i, name=f"s{i}", params={"NCPUS": 1}) for i in range(count)]
    return storage.jobs.create(1, 1, "para.xml", states, ["a"], [rid] * count)


def reconciler(storage, fake):
    host = Reconciler()
    host.db, host.queues = storage, QueuePublisher(fake)
    host.watch = Watch(watched=3600)
    # No grace: nobody else publishes these rows.
    host.config = {
        "RECONCILER": {"lost_after": 60, "on_machine_lost": "requeue", "outbox_after": 0}
    }
    return host


def test_one_central_at_a_time_holds_the_reconciler_pass(centrals):
    one, two = centrals
    with one.exclusive.hold("reconciler") as held:
        assert held
        with two.exclusive.hold("reconciler") as other:
            assert not other
        # Another name is another lock.
        with two.exclusive.hold("elsewhere") as other:
            assert other
    with two.exclusive.hold("reconciler") as held:
        assert held


def test_a_reconciler_pass_is_skipped_while_another_central_runs_one(centrals):
    one, two = centrals
    ids = placed_jobs(one, 3)
    fake = FakePublisher()
    with one.exclusive.hold("reconciler"):
        assert reconciler(two, fake).reconcile() is False
        assert fake.ids == [] and two.outbox.count() == 3
    assert reconciler(two, fake).reconcile() is True
    assert sorted(fake.ids) == ids and two.outbox.count() == 0


def test_a_reconciler_pass_running_keeps_the_other_central_out(centrals):
    one, two = centrals
    ids = placed_jobs(one, 2)
    answers = []
    # The second central tries its pass while the first is publishing in its own.
    fake_two = FakePublisher()
    fake_one = FakePublisher(during=lambda: answers.append(reconciler(two, fake_two).reconcile()))
    assert reconciler(one, fake_one).reconcile() is True
    assert answers == [False] and fake_two.ids == []
    assert sorted(fake_one.ids) == ids


def test_a_lease_stays_with_its_holder_until_released(centrals):
    one, two = centrals
    first, second = one.exclusive.lease("relay"), two.exclusive.lease("relay")
    try:
        assert first.renew() and first.held
        assert not second.renew() and not second.held
        # Renewing checks the lease, it does not take it twice or let it go.
        assert first.renew() and not second.renew()
        first.release()
        assert not first.held
        assert second.renew()
        assert not first.renew()
    finally:
        first.release()
        second.release()


def test_a_lease_lost_with_its_session_is_noticed_and_taken_again(centrals, url):
    if not url.startswith("postgresql"):
        pytest.skip("only a PostgreSQL session can be lost while its process lives")
    one, two = centrals
    lease = one.exclusive.lease("relay")
    try:
        assert lease.renew()
        pid = lease._conn.connection.dbapi_connection.get_backend_pid()
        with two.catalog.Session() as session:
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # The next renewal finds the session gone and asks again on a new one: the lock is free.
        assert lease.renew() and lease._conn is not None
        other = two.exclusive.lease("relay")
        assert not other.renew()
    finally:
        lease.release()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from tests.unit.test_central_exclusive import provider
    storage = provider(sys.argv[1]).get_dependency(worker_ctx=None)
    with storage.exclusive.hold("reconciler") as held:
        print("held" if held else "refused", flush=True)
        time.sleep(600)
    """
)


def test_a_central_killed_mid_pass_leaves_no_lock_behind(centrals, url):
    one, _ = centrals
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with one.exclusive.hold("reconciler") as held:
            assert not held
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(10)

        def free():
            with one.exclusive.hold("reconciler") as held:
                return held

        # PostgreSQL notices the dead session once its socket closes.
        wait_for(free, 30, what="the killed holder's lock to go")
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()


def test_two_drainers_at_once_never_publish_one_row_twice(centrals, url):
    if not url.startswith("postgresql"):
        pytest.skip(
            "SKIP LOCKED is PostgreSQL's; on SQLite only the reconciler drains, one at a time"
        )
    one, two = centrals
    ids = placed_jobs(one, 4)
    second = []
    fake_two = FakePublisher()
    # The second drainer runs while the first holds its rows, between its read and its delete.
    fake_one = FakePublisher(during=lambda: second.append(drain(two, QueuePublisher(fake_two))))
    assert drain(one, QueuePublisher(fake_one)) == 4
    assert second == [0] and fake_two.ids == []
    assert sorted(fake_one.ids) == ids and one.outbox.count() == 0
