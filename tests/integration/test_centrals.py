"""Two central processes on one PostgreSQL database, two autorun agents, sweeps of short jobs.

Every job must end COMPLETED exactly once: one claim (one attempt, one
``claimed`` event), one run of each step in its directory's ledger, no claim
refused because another held the job; and with one central SIGKILLed
mid-sweep, the other finishes everything.
"""

import re
import signal
import time
import uuid

import pytest

from services.client.eventstream import EventStream
from tests.chaos.report import clean, judge
from tests.integration.sweeps import steps_package, sweep_para
from tests.mesh import Mesh, wait_for

STEPS = '<ExeArgument id="a" type="exec" value="true" priority="1"/>'
STEPS += '<ExeArgument id="b" type="exec" value="true" priority="2"/>'
# Long enough that a sweep is still under way when a central is killed.
SLOW_STEPS = STEPS.replace('value="true" priority="1"', 'value="sleep 0.5" priority="1"')
AGENTS = (1, 2)
JOBS = 100
FINISHED = ("COMPLETED", "FAILED", "KILLED")
NOT_CLAIMED = re.compile(r"Job<(\d+)> not claimed: (.*)")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, amqp_uri, pg_module_url):
    mesh = Mesh(tmp_path_factory.mktemp("centrals"), amqp_uri, pg_module_url)
    try:
        mesh.start_core()
        mesh.start("central2", "central")
        for rid in AGENTS:
            mesh.start_agent(rid, autorun=True, slots=4, wait=False)
        for rid in AGENTS:
            mesh.wait_online(rid)
        mesh.c_id = steps_package(mesh, f"centrals{uuid.uuid4().hex[:6]}", STEPS)
        mesh.slow_c_id = steps_package(mesh, f"slow{uuid.uuid4().hex[:6]}", SLOW_STEPS)
        yield mesh
    finally:
        mesh.close()


def sweep(mesh, c_id, n=JOBS):
    p_id = mesh.add_project(f"sweep{uuid.uuid4().hex[:6]}", {"para.xml": sweep_para(range(n))})
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    assert len(ids) == n
    # Both machines take part: unpinned jobs spread over the online autorun machines.
    assert {mesh.ok("job", "getrid", job_id=j) for j in ids} == set(AGENTS)
    return p_id, ids


def states(mesh, p_id):
    return [j["state"] for j in mesh.ok("project", "getalljob", p_id=p_id)]


def refused_claims(mesh, ids):
    """``{job_id: [reasons]}`` of the claims the agents saw refused for ``ids``."""
    wanted = set(ids)
    found = {}
    for rid in AGENTS:
        for match in NOT_CLAIMED.finditer(mesh.log(f"agent{rid}")):
            if int(match.group(1)) in wanted:
                found.setdefault(int(match.group(1)), []).append(match.group(2))
    return found


def assert_each_job_once(mesh, p_id, ids):
    wait_for(
        lambda: all(s in FINISHED for s in states(mesh, p_id)),
        180,
        interval=0.5,
        what="every job of the sweep to end",
    )
    verdict = judge(mesh, [p_id], len(ids), steps=("a", "b"))
    assert clean(verdict) and verdict["states"] == {"COMPLETED": len(ids)}, verdict
    for job_id in ids:
        job = mesh.ok("job", "query", job_id=job_id)
        claims = [e for e in mesh.ok("job", "events", job_id=job_id) if e["message"] == "claimed"]
        assert job["attempts"] == 1 and len(claims) == 1, (job_id, job["attempts"], claims)


def reconciler_troubles(mesh):
    """Lines where a central's reconciler failed or could not take its pass."""
    lines = (mesh.log("central") + mesh.log("central2")).splitlines()
    return [
        line
        for line in lines
        if "services.central.reconciler" in line and (" ERROR " in line or "skipped" in line)
    ]


def completed_events(stream, ids):
    """The COMPLETED events of ``ids`` the stream carries until each came and it falls quiet."""
    got = []
    deadline = time.monotonic() + 60
    while not set(ids) <= {e["job_id"] for e in got}:
        assert time.monotonic() < deadline, f"{len(got)} COMPLETED events of {len(ids)} jobs"
        event = stream.next(timeout=5)
        if event is not None:
            got.append(event)
    # A second relay would publish each event again right behind the first.
    while (event := stream.next(timeout=2)) is not None:
        got.append(event)
    return [e for e in got if e["job_id"] in set(ids)]


def test_two_centrals_run_a_sweep_each_job_once(mesh):
    with EventStream(mesh.config["AMQP_URI"], {"state": "COMPLETED"}) as stream:
        p_id, ids = sweep(mesh, mesh.c_id)
        assert_each_job_once(mesh, p_id, ids)
        events = completed_events(stream, ids)
    assert refused_claims(mesh, ids) == {}
    assert reconciler_troubles(mesh) == []
    # One central relays the event log: each event goes out once.
    assert {e["job_id"] for e in events} == set(ids)
    assert len({e["id"] for e in events}) == len(events)
    relaying = [name for name in ("central", "central2") if "this central relays" in mesh.log(name)]
    assert len(relaying) == 1, relaying


def test_one_central_killed_mid_sweep_the_other_finishes_it(mesh):
    p_id, ids = sweep(mesh, mesh.slow_c_id)
    wait_for(
        lambda: states(mesh, p_id).count("COMPLETED") >= 5,
        120,
        interval=0.2,
        what="the sweep under way",
    )
    assert states(mesh, p_id).count("COMPLETED") < len(ids), "the sweep ended before the kill"
    relay = "central" if "this central relays" in mesh.log("central") else "central2"
    with EventStream(mesh.config["AMQP_URI"], {"state": "COMPLETED"}) as stream:
        jobs = mesh.ok("project", "getalljob", p_id=p_id)
        left = [j["job_id"] for j in jobs if j["state"] not in FINISHED]
        mesh.stop("central", signal.SIGKILL)
        assert_each_job_once(mesh, p_id, ids)
        # The survivor relays once the killed one cannot (it may have relayed all along).
        events = completed_events(stream, left)
    assert len(left) > 0 and {e["job_id"] for e in events} == set(left)
    if relay == "central":
        assert "this central relays" in mesh.log("central2")
    # A job id the killed central published but left in the outbox goes out again
    # and is refused as finished; never because another claim holds the job.
    refused = refused_claims(mesh, ids)
    assert all(
        re.search(r" is COMPLETED, expected QUEUED$", r) for rs in refused.values() for r in rs
    ), refused
    mesh.start("central", "central")
