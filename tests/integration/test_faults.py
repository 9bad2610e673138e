"""Real failures under a running sweep: the broker and PostgreSQL restarted, central and agents
SIGKILLed, every message delivered twice, a stale attempt reporting late.

Each test ends with the same verdict (tests/chaos/report.py): every job COMPLETED,
one run of each step per job directory (each attempt builds its own), no process
of a job left, no job stuck, no second job set.
"""

import base64
import os
import signal
import time
import uuid

import psutil
import pytest
import sqlalchemy as sa
from kombu import Connection, Exchange, Queue

from services.common.names import JOBS_EXCHANGE, job_queue
from tests.chaos.report import clean, judge
from tests.chaos.servers import broker_stopped, postgres_stopped, processes_of, reset_rpc
from tests.integration.conftest import make_package
from tests.integration.sweeps import steps_package, sweep_para
from tests.mesh import Mesh, wait_for
from tests.stepprocs import job_processes

# Steps see only an allow-list of the agent's environment, LC_* included: the agent's
# LC_CHAOS_STEP_SECONDS sets how long step a runs on that machine.
STEPS = (
    '<ExeArgument id="a" type="shell" value="sleep ${{LC_CHAOS_STEP_SECONDS:-1}}" priority="1"/>'
)
STEPS += '<ExeArgument id="b" type="exec" value="true" priority="2"/>'
# Seconds a test that stops the broker or PostgreSQL waits for other test runs to end.
WAIT_ALONE = float(os.environ.get("MIRROR_FAULTS_WAIT", 600))


def others_testing():
    """pytest runs on this machine other than this one (shared broker and PostgreSQL)."""
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "-m pytest" in cmd and proc.info["pid"] not in mine and "/bin/sh" not in cmd:
            found.append(proc.info["pid"])
    return found


@pytest.fixture
def alone():
    """Wait (MIRROR_FAULTS_WAIT seconds, 600 by default) until no other test run shares the servers."""
    deadline = time.monotonic() + WAIT_ALONE
    while others := others_testing():
        if time.monotonic() > deadline:
            pytest.skip(f"other test runs {others} share the broker and PostgreSQL")
        time.sleep(5)


def sweep_mesh(tmp_path, amqp_uri, db_url=None, agents=(1, 2), slots=4, env=None):
    mesh = Mesh(tmp_path, amqp_uri, db_url)
    mesh.start_core()
    for rid in agents:
        mesh.start_agent(rid, autorun=True, slots=slots, env=env, wait=False)
    for rid in agents:
        mesh.wait_online(rid)
    mesh.c_id = steps_package(mesh, f"faults{uuid.uuid4().hex[:6]}", STEPS)
    return mesh


def dispatch(mesh, n, **kwargs):
    p_id = mesh.add_project(f"sweep{uuid.uuid4().hex[:6]}", {"para.xml": sweep_para(range(n))})
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=mesh.c_id, **kwargs)
    assert len(ids) == n
    return p_id, ids


def answering(mesh):
    """True when central answers again; a client broken by a restart is replaced."""
    try:
        return mesh.rpc("machine", "list")[0] == 0
    except Exception:
        reset_rpc(mesh)
        raise


def states(mesh, p_id):
    return [j["state"] for j in mesh.ok("project", "getalljob", p_id=p_id)]


def assert_clean(mesh, p_ids, expected, timeout=90):
    """Wait until every job has ended and no process of them is left; then judge the run."""
    wait_for(
        lambda: all(s in ("COMPLETED", "FAILED", "KILLED") for p in p_ids for s in states(mesh, p)),
        timeout,
        interval=0.5,
        what="every job to end",
    )
    ids = [j["job_id"] for p in p_ids for j in mesh.ok("project", "getalljob", p_id=p)]
    wait_for(lambda: not processes_of(mesh, ids), 20, what="no process of the jobs left")
    verdict = judge(mesh, p_ids, expected, steps=("a", "b"))
    assert clean(verdict), verdict
    return verdict


def wait_running(mesh, p_id, count=1):
    wait_for(lambda: states(mesh, p_id).count("RUNNING") >= count, 60, what="jobs running")


@pytest.mark.timeout(WAIT_ALONE + 300)
def test_broker_restarted_mid_sweep_loses_nothing(tmp_path, amqp_uri, alone):
    mesh = sweep_mesh(tmp_path, amqp_uri, env={"LC_CHAOS_STEP_SECONDS": "2"})
    try:
        p_id, _ = dispatch(mesh, 16)
        wait_running(mesh, p_id)
        reset_rpc(mesh)
        with broker_stopped():
            time.sleep(5)  # the outage itself
        wait_for(lambda: answering(mesh), 60, what="central to answer after the restart")
        assert_clean(mesh, [p_id], 16)
    finally:
        reset_rpc(mesh)
        mesh.close()


@pytest.mark.timeout(WAIT_ALONE + 300)
def test_postgres_down_30s_mid_sweep_loses_nothing(tmp_path, amqp_uri, pg_url, alone):
    mesh = sweep_mesh(tmp_path, amqp_uri, pg_url, env={"LC_CHAOS_STEP_SECONDS": "2"})
    try:
        p_id, _ = dispatch(mesh, 12)
        wait_running(mesh, p_id)
        with postgres_stopped():
            time.sleep(30)  # the outage itself
        assert_clean(mesh, [p_id], 12, timeout=60)
    finally:
        mesh.close()


class RawRpc:
    """nameko RPC requests published by hand, so that one can go twice with one correlation id."""

    def __init__(self, mesh):
        self.conn = Connection(mesh.config["AMQP_URI"])
        self.exchange = Exchange(mesh.exchange, type="topic", durable=True)
        self.name = f"rpc.reply-faults-{uuid.uuid4().hex[:8]}"
        self.queue = Queue(self.name, self.exchange, routing_key=self.name, auto_delete=True)
        self.replies = {}
        self.consumer = self.conn.Consumer([self.queue], callbacks=[self._reply], accept=["json"])
        self.consumer.consume()

    def _reply(self, body, message):
        self.replies.setdefault(message.properties["correlation_id"], []).append(body["result"])
        message.ack()

    def send(self, service, method, correlation_id, **kwargs):
        self.conn.Producer().publish(
            {"args": [], "kwargs": kwargs},
            exchange=self.exchange,
            routing_key=f"{service}.{method}",
            reply_to=self.name,
            correlation_id=correlation_id,
            serializer="json",
        )

    def wait(self, correlation_id, count, timeout=60):
        deadline = time.monotonic() + timeout
        while len(self.replies.get(correlation_id, [])) < count and time.monotonic() < deadline:
            try:
                self.conn.drain_events(timeout=0.5)
            except TimeoutError:
                continue
        return self.replies.get(correlation_id, [])

    def close(self):
        self.conn.release()


def queued_ids(mesh, rid):
    """Every job id the messages of machine ``rid``'s queue carry (left in the queue)."""
    ids = []
    with Connection(mesh.config["AMQP_URI"]) as conn:
        queue = job_queue(rid)(conn.default_channel)
        while (message := queue.get(no_ack=False)) is not None:
            body = message.decode()
            ids += [j for j, _ in body["jobs"]] if "jobs" in body else [body["job_id"]]
    return ids


@pytest.mark.parametrize(
    "moment",
    [
        "inserting",
        "committed",
    ],
)
def test_central_killed_mid_dispatch_makes_one_job_set_all_published(
    tmp_path, amqp_uri, pg_url, moment
):
    """5,000 states for machine 9 (manual: the ids stay in its queue to be counted).

    Central is SIGKILLed while the jobs are being inserted, or right after they
    are committed, then started again. Running 5,000 jobs to their end would take
    minutes here; a job whose id is in its machine's queue is one its agent runs.
    """
    mesh = Mesh(tmp_path, amqp_uri, pg_url, RPC={"timeout": 120})
    raw = None
    # Autocommit: PostgreSQL keeps one pg_stat_activity snapshot per transaction.
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        mesh.start_core()
        mesh.start_agent(9)
        mesh.c_id = steps_package(mesh, "big", STEPS)
        values = ";".join(map(str, range(5000)))
        para = f'<Para><Param name="x" type="int" multistate="1">{values}</Param></Para>'
        p_id = mesh.add_project("big", {"para.xml": para.encode()})
        db = pg_url.rsplit("/", 1)[1]
        probe = {
            "inserting": "SELECT count(*) FROM pg_stat_activity WHERE datname = :db"
            " AND query ILIKE 'INSERT INTO job%' AND state <> 'idle'",
            "committed": "SELECT count(*) - 4999 FROM jobs WHERE :db IS NOT NULL",
        }[moment]
        raw = RawRpc(mesh)
        raw.send("jobdispatch", "do", "dispatch-1", p_id=p_id, c_id=mesh.c_id, rid=9)
        with engine.connect() as conn:
            wait_for(
                lambda: conn.execute(sa.text(probe), {"db": db}).scalar() > 0,
                60,
                interval=0.01,
                what=f"the dispatch {moment}",
            )
        mesh.stop("central", signal.SIGKILL)
        mesh.start("central", "central")
        wait_for(lambda: answering(mesh), 60, what="central to answer again")
        wait_for(lambda: raw.wait("dispatch-1", 1, timeout=1), 90, what="the dispatch answer")
        jobs = mesh.ok("project", "getalljob", p_id=p_id)
        assert len(jobs) == 5000
        assert {j["state"] for j in jobs} == {"QUEUED"}
        # Ids the killed central committed but did not publish go out with the next
        # drain of the outbox (RECONCILER.outbox_after).
        expected = sorted(j["job_id"] for j in jobs)
        wait_for(
            lambda: sorted(set(queued_ids(mesh, 9))) == expected,
            90,
            what="every committed job id on machine 9's queue",
        )
    finally:
        engine.dispose()
        if raw is not None:
            raw.close()
        mesh.close()


def test_agent_killed_for_good_hands_running_and_queued_jobs_on(tmp_path, amqp_uri):
    # Steps take 10 s on machine 1, 1 s on machine 2.
    mesh = sweep_mesh(tmp_path, amqp_uri, agents=(1,), slots=2, env={"LC_CHAOS_STEP_SECONDS": "10"})
    try:
        # Machine 1 alone is online: it holds every job, two running, four queued.
        p_id, _ = dispatch(mesh, 6)
        wait_running(mesh, p_id, 2)
        mesh.start_agent(2, autorun=True, slots=4, env={"LC_CHAOS_STEP_SECONDS": "1"})
        held = mesh.ok("project", "getalljob", p_id=p_id)
        assert [j["state"] for j in held].count("QUEUED") == 4 and {j["rid"] for j in held} == {1}
        mesh.stop("agent1", signal.SIGKILL)
        assert_clean(mesh, [p_id], 6, timeout=45)
    finally:
        mesh.close()


@pytest.fixture(scope="module")
def twice(tmp_path_factory, amqp_uri):
    """Core services; machine 5 known (its agent stopped) and the fault package registered."""
    mesh = Mesh(tmp_path_factory.mktemp("twice"), amqp_uri)
    try:
        mesh.start_core()
        mesh.start_agent(5)
        mesh.stop("agent5")
        mesh.c_id = steps_package(mesh, "twice", STEPS)
        mesh.raw = RawRpc(mesh)
        yield mesh
    finally:
        if hasattr(mesh, "raw"):
            mesh.raw.close()
        mesh.close()


def test_job_queue_batches_delivered_twice_run_each_job_once(twice):
    p_id, ids = dispatch(twice, 5, rid=5)
    queue = job_queue(5)
    with Connection(twice.config["AMQP_URI"]) as conn:
        for _ in range(2):
            conn.Producer().publish(
                {"jobs": [[j, 1] for j in ids]},
                exchange=JOBS_EXCHANGE,
                routing_key=queue.routing_key,
                declare=[queue],
                delivery_mode=2,
            )
    twice.start_agent(5, autorun=True)
    try:
        assert_clean(twice, [p_id], 5, timeout=60)
    finally:
        twice.stop("agent5")
    for job_id in ids:
        events = twice.ok("job", "events", job_id=job_id)
        assert [e["message"] for e in events].count("claimed") == 1


def created(mesh, kind, token):
    """How many things of ``kind`` named with ``token`` exist."""
    if kind == "project":
        return sum(p["name"] == token for p in mesh.ok("project", "list"))
    if kind == "calcpackage":
        return sum(c["name"] == token for c in mesh.ok("calcpackage", "list"))
    return len(mesh.ok("project", "getalljob", p_id=token))


@pytest.mark.parametrize("kind", ["project", "calcpackage", "jobdispatch"])
def test_a_creation_request_delivered_twice_creates_once(twice, kind):
    token = f"dup{uuid.uuid4().hex[:6]}"
    if kind == "project":
        call = ("project", "new", {"name": token})
    elif kind == "calcpackage":
        adapter = f'<Adapter name="{token}"><Steps>{STEPS}</Steps></Adapter>'
        content = base64.b64encode(make_package(adapter))
        call = ("calcpackage", "new", {"name": token, "content": content.decode()})
    else:
        token = twice.add_project(token, {"para.xml": sweep_para(range(3))})
        call = ("jobdispatch", "do", {"p_id": token, "c_id": twice.c_id, "rid": 5})
    cid = f"faults-{uuid.uuid4()}"
    for _ in range(2):
        twice.raw.send(call[0], call[1], cid, **call[2])
    answers = twice.raw.wait(cid, 2)
    assert len(answers) == 2 and answers[0] == answers[1] and answers[0][0] == 0, answers
    assert created(twice, kind, token) == (3 if kind == "jobdispatch" else 1)


def test_a_claim_delivered_twice_claims_once(twice):
    _, (job_id,) = dispatch(twice, 1, rid=5)
    cid = f"faults-{uuid.uuid4()}"
    for _ in range(2):
        twice.raw.send("job", "claim", cid, job_id=job_id, rid=5)
    answers = twice.raw.wait(cid, 2)
    assert len(answers) == 2 and answers[0][0] == 0, answers
    job = twice.ok("job", "query", job_id=job_id)
    assert job["state"] == "PREPARING" and job["attempts"] == 1
    events = twice.ok("job", "events", job_id=job_id)
    assert [e["message"] for e in events].count("claimed") == 1


def on_machine(mesh, job_id, rid):
    """Processes of ``job_id`` working in machine ``rid``'s work root."""
    root = os.path.join(mesh.config["DATA_DIR"], "work", f"rid{rid}")
    return [p for p in job_processes(job_id) if p.cwd().startswith(root)]


def test_a_stale_attempt_reporting_late_is_refused_and_stopped(tmp_path, amqp_uri):
    # Attempt 1 (machine 1) sleeps 60 s; attempt 2 (machine 2) 1 s.
    mesh = sweep_mesh(tmp_path, amqp_uri, agents=(1,), slots=1, env={"LC_CHAOS_STEP_SECONDS": "60"})
    try:
        p_id, (job_id,) = dispatch(mesh, 1)
        wait_for(lambda: on_machine(mesh, job_id, 1), 30, what="attempt 1 running")
        mesh.stop("agent1", signal.SIGKILL)
        mesh.start_agent(2, autorun=True, slots=1, env={"LC_CHAOS_STEP_SECONDS": "1"})
        job = wait_for(
            lambda: (j := mesh.ok("job", "query", job_id=job_id))["attempts"] == 2 and j,
            60,
            what="attempt 2 claimed",
        )
        assert job["rid"] == 2
        assert mesh.rpc(
            "job", "report", job_id=job_id, rid=2, changes={"message": "late"}, attempt=1
        ) == [-1, f"job {job_id} attempt 1 is superseded by attempt 2"]
        # Machine 1 comes back: its report of attempt 1 is refused and it stops that step.
        mesh.start_agent_again(1)
        wait_for(lambda: not on_machine(mesh, job_id, 1), 30, what="attempt 1 stopped")
        assert_clean(mesh, [p_id], 1, timeout=60)
        assert mesh.ok("job", "query", job_id=job_id)["rid"] == 2
    finally:
        mesh.close()
