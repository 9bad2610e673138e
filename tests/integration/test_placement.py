"""Placement for real: the outbox across a SIGKILLed central, a lost machine's jobs, the rules.

Each test runs once on SQLite and once on PostgreSQL.
"""

import signal

import pytest
import yaml
from nameko.standalone.rpc import ClusterRpcProxy

from tests.integration.sweeps import steps_package, sweep_para, wait_all
from tests.mesh import Mesh, wait_for

SLEEP = '<ExeArgument id="s" type="exec" value="sleep {}" priority="1"/>'


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mesh(request, tmp_path_factory, amqp_uri):
    """Central (which holds placed jobs 60 s before publishing them), autorun agent 1 (2 slots)
    and manual agent 2 (4 slots)."""
    db_url = request.getfixturevalue("pg_module_url") if request.param == "postgres" else None
    mesh = Mesh(
        tmp_path_factory.mktemp(f"place-{request.param}"),
        amqp_uri,
        db_url,
        DEBUG={"publish_delay": 60},
    )
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, slots=2)
        mesh.start_agent(2, slots=4)
        yield mesh
    finally:
        mesh.close()


def jobs_of(mesh, p_id):
    return mesh.ok("job", "list", p_id=p_id, limit=1000)


def test_central_killed_between_commit_and_publish_publishes_on_restart(mesh):
    c_id = steps_package(mesh, "quick", SLEEP.format(0.1))
    p_id = mesh.add_project("outbox", {"para.xml": sweep_para(range(12))})
    with ClusterRpcProxy(mesh.rpc_config, timeout=60) as cluster:
        cluster.jobdispatch.do.call_async(p_id=p_id, c_id=c_id)
        # Committed (the jobs are listed), then held before the publish: kill it there.
        committed = wait_for(lambda: len(jobs_of(mesh, p_id)) == 12 and jobs_of(mesh, p_id), 30)
        mesh.stop("central", signal.SIGKILL)
    ids = sorted(j["job_id"] for j in committed)
    assert {j["state"] for j in committed} == {"QUEUED"} and {j["rid"] for j in committed} == {1}
    mesh.config["DEBUG"]["publish_delay"] = 0
    mesh.config_path.write_text(yaml.safe_dump(mesh.config))
    mesh.start("central", "central")
    # The new central's outbox drain publishes them: every one runs, once.
    jobs = wait_all(mesh, ids, timeout=120)
    assert [j["state"] for j in jobs] == ["COMPLETED"] * 12, [j["error"] for j in jobs]
    for job_id in ids:
        events = mesh.ok("job", "events", job_id=job_id)
        assert [e["message"] for e in events].count("claimed") == 1


def test_unpinned_jobs_skip_the_manual_machine_and_impossible_ones_are_refused(mesh):
    c_id = steps_package(mesh, "quick2", SLEEP.format(0.1))
    p_id = mesh.add_project("spread", {"para.xml": sweep_para(range(4))})
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    jobs = wait_all(mesh, ids)
    assert {(j["rid"], j["state"]) for j in jobs} == {(1, "COMPLETED")}
    refused = {
        "rid": ({"rid": 77}, "resource machine is not existed , rid : 77"),
        "tag": ({"tags": "gpu"}, "no resource machine is tagged gpu"),
    }
    for extra, message in refused.values():
        assert mesh.rpc("jobdispatch", "do", p_id=p_id, c_id=c_id, **extra) == [-1, message]
    big = mesh.add_project(
        "big", {"para.xml": b'<Para><Param name="NCPUS" type="int">3</Param></Para>'}
    )
    assert mesh.rpc("jobdispatch", "do", p_id=big, c_id=c_id) == [
        -1,
        "no resource machine has 3 cores (the largest has 2)",
    ]
    # Pinned to the manual machine, which has the cores: accepted, and it stays there.
    (pinned,) = mesh.ok("jobdispatch", "do", p_id=big, c_id=c_id, rid=2)
    job = mesh.ok("job", "query", job_id=pinned)
    assert (job["rid"], job["state"]) == (2, "QUEUED")
    assert job["waiting"] == "resource machine 2 runs jobs only when asked (manual)"


def test_a_lost_machine_s_queued_jobs_move_and_pinned_ones_wait(mesh):
    c_id = steps_package(mesh, "mover", SLEEP.format(1))
    blocker_c = steps_package(mesh, "blocker", SLEEP.format(8))
    two = b'<Para><Param name="NCPUS" type="int">2</Param></Para>'
    (blocker,) = mesh.ok(
        "jobdispatch", "do", p_id=mesh.add_project("block", {"para.xml": two}), c_id=blocker_c
    )
    mesh.wait_state(blocker, "RUNNING")  # machine 1 is full
    mesh.start_agent(9, autorun=True, slots=2)
    p_id = mesh.add_project("lost", {"para.xml": sweep_para(range(4), ncpus=[2] * 4)})
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    (pinned,) = mesh.ok(
        "jobdispatch", "do", p_id=mesh.add_project("pin", {"para.xml": two}), c_id=c_id, rid=9
    )
    on_nine = [j for j in jobs_of(mesh, p_id) if j["rid"] == 9]
    wait_for(
        lambda: any(
            mesh.ok("job", "query", job_id=j["job_id"])["state"] == "RUNNING" for j in on_nine
        ),
        30,
        what="a job running on machine 9",
    )
    mesh.stop("agent9", signal.SIGKILL)
    jobs = wait_all(mesh, ids, timeout=120)
    assert [j["state"] for j in jobs] == ["COMPLETED"] * 4, [j["error"] for j in jobs]
    assert {j["rid"] for j in jobs} == {1}
    moved = [
        e["message"]
        for j in on_nine
        for e in mesh.ok("job", "events", job_id=j["job_id"])
        if "resource machine 9 stopped sending heartbeats" in e["message"]
    ]
    assert len(moved) == len(on_nine) >= 2
    job = mesh.ok("job", "query", job_id=pinned)
    assert (job["state"], job["rid"]) == ("QUEUED", 9)
    assert job["waiting"].startswith("pinned to resource machine 9, which is offline")
    health = mesh.ok("machine", "ruok", rid=9)
    assert health["waiting_jobs"] == [pinned]
    assert health["waiting"].startswith("1 pinned job(s) wait for this machine")
    assert mesh.ok("job", "query", job_id=blocker)["state"] == "COMPLETED"


def test_a_job_waits_unplaced_while_no_machine_can_take_it_then_runs(mesh):
    c_id = steps_package(mesh, "later", SLEEP.format(0.1))
    mesh.stop("agent1")
    wait_for(lambda: not mesh.machine(1)["online"], 30, what="machine 1 offline")
    (job_id,) = mesh.ok(
        "jobdispatch",
        "do",
        p_id=mesh.add_project("later", {"para.xml": sweep_para([1])}),
        c_id=c_id,
    )
    job = mesh.ok("job", "query", job_id=job_id)
    assert (job["rid"], job["state"]) == (None, "QUEUED")
    assert job["waiting"] == "waits for an online autorun resource machine with 1 core(s)"
    mesh.start_agent_again(1)
    job = mesh.wait_state(job_id, "COMPLETED", timeout=60)
    assert job["rid"] == 1 and job["waiting"] is None
