"""Fencing over the real broker: superseded attempts, repeated requests, expired requests."""

import base64
import json
import os
import signal
import uuid

import pytest
from kombu import Connection, Exchange, Producer, Queue

from adapters.bundled import package_zip, project_files
from services.client.connection import MirrorError, RpcClient
from tests.integration.manual_jobs import dispatch_demo
from tests.mesh import wait_for

RID = 7
CLAIM_TIMEOUT = 30


@pytest.fixture(scope="module")
def played(core):
    """``(mesh, p_id, c_id)``: the test plays machine 7, which runs no agent."""
    core.ok("machine", "heartbeat", rid=RID, name="played-by-test", slots=2, autorun=True)
    c_id = core.add_package("trivial", package_zip("trivial"))
    p_id = core.add_project("fencing", project_files("trivial"))
    return core, p_id, c_id


def beat(mesh):
    mesh.ok("machine", "heartbeat", rid=RID, name="played-by-test", slots=2, autorun=True)


def test_a_report_of_a_superseded_attempt_is_refused_and_changes_nothing(played):
    mesh, p_id, c_id = played
    beat(mesh)
    job_id = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=RID)[0]
    first = mesh.ok("job", "claim", job_id=job_id, rid=RID)
    assert first["attempt"] == 1
    # Machine 7 goes silent: the reconciler takes the job back; it beats again and gets it back.
    wait_for(
        lambda: mesh.ok("job", "query", job_id=job_id)["state"] == "QUEUED",
        CLAIM_TIMEOUT,
        what=f"job {job_id} taken back from the silent machine",
    )
    beat(mesh)
    wait_for(
        lambda: mesh.ok("job", "query", job_id=job_id)["rid"] == RID or beat(mesh),
        CLAIM_TIMEOUT,
        what=f"job {job_id} placed on machine {RID} again",
    )
    second = mesh.ok("job", "claim", job_id=job_id, rid=RID)
    assert second["attempt"] == 2
    before = mesh.ok("job", "query", job_id=job_id)
    events = mesh.ok("job", "events", job_id=job_id)

    late = {"state": "READY", "message": "files generated"}
    code, value = mesh.rpc(
        "job", "report", job_id=job_id, rid=RID, changes=late, expect=["PREPARING"], attempt=1
    )
    assert [code, value] == [-1, f"job {job_id} attempt 1 is superseded by attempt 2"]
    out = mesh.ok(
        "job",
        "batch",
        rid=RID,
        reports=[{"job_id": job_id, "changes": late, "expect": ["PREPARING"], "attempt": 1}],
    )
    assert out["reports"] == [[-1, f"job {job_id} attempt 1 is superseded by attempt 2"]]

    assert mesh.ok("job", "query", job_id=job_id) == before
    assert mesh.ok("job", "events", job_id=job_id) == events
    assert before["attempts"] == 2 and events[-1]["attempt"] == 2
    # The current attempt goes on.
    done = mesh.ok(
        "job", "report", job_id=job_id, rid=RID, changes=late, expect=["PREPARING"], attempt=2
    )
    assert done["state"] == "READY"


def deliver(mesh, routing_key, kwargs, correlation_id, times=2):
    """Publish one RPC request ``times`` times with one correlation id; answer the replies."""
    exchange = Exchange(mesh.exchange, type="topic", durable=True)
    reply_key = f"fencing-replies-{uuid.uuid4().hex}"
    replies = Queue(reply_key, exchange=exchange, routing_key=reply_key, auto_delete=True)
    answers = []
    with Connection(mesh.config["AMQP_URI"]) as conn:
        with conn.Consumer(
            replies, callbacks=[lambda body, msg: (answers.append(body), msg.ack())]
        ):
            producer = Producer(conn.channel())
            for _ in range(times):
                producer.publish(
                    {"args": [], "kwargs": kwargs},
                    exchange=exchange,
                    routing_key=routing_key,
                    serializer="json",
                    correlation_id=correlation_id,
                    reply_to=reply_key,
                )
            wait_for(
                lambda: conn.drain_events(timeout=1) or len(answers) >= times,
                CLAIM_TIMEOUT,
                what=f"{times} replies",
            )
    return [a if isinstance(a, dict) else json.loads(a) for a in answers]


def test_a_redelivered_dispatch_creates_its_jobs_once(played):
    mesh, p_id, c_id = played
    p_id = mesh.add_project("redelivered", project_files("trivial"))
    kwargs = {"p_id": p_id, "c_id": c_id, "rid": RID}
    answers = deliver(mesh, "jobdispatch.do", kwargs, str(uuid.uuid4()))

    first, second = (a["result"] for a in answers)
    assert first == second and first[0] == 0 and len(first[1]) >= 1
    assert sorted(j["job_id"] for j in mesh.ok("project", "getalljob", p_id=p_id)) == first[1]


def test_a_redelivered_project_creation_creates_one_project(played):
    mesh, _, _ = played
    name = f"once-{uuid.uuid4().hex[:6]}"
    answers = deliver(mesh, "project.new", {"name": name}, str(uuid.uuid4()))
    assert answers[0]["result"] == answers[1]["result"] and answers[0]["result"][0] == 0
    assert [p["name"] for p in mesh.ok("project", "list")].count(name) == 1


def test_a_repeated_request_id_answers_the_first_result(played):
    mesh, p_id, c_id = played
    key = f"req-{uuid.uuid4().hex}"
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=RID, request_id=key)
    count = len(mesh.ok("project", "getalljob", p_id=p_id))
    assert mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=RID, request_id=key) == ids
    assert len(mesh.ok("project", "getalljob", p_id=p_id)) == count
    new_p = mesh.ok("project", "new", name="keyed", request_id=key + "-p")
    assert mesh.ok("project", "new", name="keyed", request_id=key + "-p") == new_p
    content = base64.b64encode(package_zip("trivial")).decode()
    c_first = mesh.ok("calcpackage", "new", name="keyed", content=content, request_id=key + "-c")
    assert (
        mesh.ok("calcpackage", "new", name="keyed", content=content, request_id=key + "-c")
        == c_first
    )
    code, value = mesh.rpc("project", "new", name="other", request_id=key)
    assert [code, value] == [-1, f"request_id {key!r} was already used for jobdispatch.do"]


# -- expiry: an agent that did not take a request in time never runs it ----------------
def test_a_request_held_by_a_stopped_agent_is_dropped_when_it_resumes(manual):
    _, ids = dispatch_demo(manual, name="expiry")
    kept, witness = ids[0], ids[1]
    agent = manual.procs["agent1"]
    client = RpcClient(manual.config["AMQP_URI"], manual.exchange, timeout=2)
    os.killpg(agent.pid, signal.SIGSTOP)
    try:
        with pytest.raises(MirrorError, match="did not answer within 2 s"):
            client.call("jobdelete_1", "do", job_id=kept, force=1)
    finally:
        os.killpg(agent.pid, signal.SIGCONT)
    manual.wait_online(1)
    # A later request on the same queue is answered: the earlier one was taken before it.
    client.timeout = 30
    assert client.call("jobdelete_1", "do", job_id=witness, force=1) == []
    wait_for(
        lambda: "request whose caller's deadline passed" in manual.log("agent1"),
        CLAIM_TIMEOUT,
        what="the agent's note of the dropped request",
    )
    assert manual.ok("job", "query", job_id=kept)["state"] == "QUEUED"
    assert manual.rpc("job", "query", job_id=witness)[0] == -1
    client.close()


def test_a_request_to_a_dead_agent_expires_in_the_broker(manual):
    _, ids = dispatch_demo(manual, name="expiry-dead")
    kept, witness = ids[0], ids[1]
    manual.stop("agent1", sig=signal.SIGKILL)
    client = RpcClient(manual.config["AMQP_URI"], manual.exchange, timeout=2)
    with pytest.raises(MirrorError, match="did not answer within 2 s"):
        client.call("jobdelete_1", "do", job_id=kept, force=1)
    # The request waits in the machine's queue until it expires there.
    wait_for(lambda: manual.queue("rpc-jobdelete_1")[0] == 0, 10, what="the request expired")
    manual.start_agent_again(1)
    client.timeout = 30
    assert client.call("jobdelete_1", "do", job_id=witness, force=1) == []
    assert manual.ok("job", "query", job_id=kept)["state"] == "QUEUED"
    client.close()
