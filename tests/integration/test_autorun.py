"""Autorun, capacity, placement and surviving faults, with several agents as real processes."""

import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kombu import Connection

from adapters.bundled import package_zip, project_files
from services.common.jobstates import FINAL
from services.common.names import JOBS_EXCHANGE, job_queue
from tests.integration.sweeps import (
    FAST_DEMO,
    consumer_gone,
    deliveries_processed,
    step_starts,
    steps_package,
    sweep_para,
    wait_all,
)
from tests.mesh import (
    ROOT,
    Mesh,
    wait_for,
)
from tests.stepprocs import job_processes
from tests.tcpcut import CutterProcess


def start_cluster_agent(mesh, rid, wait=True, env=FAST_DEMO):
    """Agent ``rid`` of the cluster: autorun, 4 slots, agent 3 tagged ``gpu``."""
    tags = ["gpu"] if rid == 3 else []
    mesh.start_agent(rid, autorun=True, slots=4, tags=tags, env=env, wait=wait)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, amqp_uri):
    """Central services plus agents 1, 2, 3 in autorun; agent 3 is tagged ``gpu``."""
    mesh = Mesh(tmp_path_factory.mktemp("cluster"), amqp_uri)
    try:
        mesh.start_core()
        for rid in (1, 2, 3):
            start_cluster_agent(mesh, rid, wait=False)
        for rid in (1, 2, 3):
            mesh.wait_online(rid)
        mesh.demo_c_id = mesh.add_package("demo", package_zip("demo"))
        yield mesh
    finally:
        mesh.close()


def test_a_sweep_spreads_over_three_agents_and_completes(cluster):
    files = dict(project_files("demo"))
    mach = ";".join(f"0.{i:02d}" for i in range(10, 40))
    alpha = ";".join(str(i) for i in range(30))
    files["para.xml"] = (
        '<Para><Param name="model" type="file">wing.dat</Param>'
        '<Param name="iterations" type="int">5</Param>'
        f'<Param name="mach" type="float" multistate="1">{mach}</Param>'
        f'<Param name="alpha" type="float" multistate="1">{alpha}</Param></Para>'
    ).encode()
    p_id = cluster.add_project("sweep30", files)
    ids = cluster.ok("jobdispatch", "do", p_id=p_id, c_id=cluster.demo_c_id)
    assert len(ids) == 30
    jobs = wait_all(cluster, ids, timeout=180)
    assert [j["state"] for j in jobs] == ["COMPLETED"] * 30, [j["error"] for j in jobs]
    assert {j["rid"] for j in jobs} == {1, 2, 3}
    for job in jobs:
        result = cluster.ok("jobgetdata", "do", job_id=job["job_id"])["result"]
        assert set(result) == {"mesh", "force"}
        # Every step ran exactly once.
        assert all(
            len(step_starts(cluster, job["job_id"], s)) == 1 for s in ("grid", "flow", "post")
        )


def test_tags_pin_jobs_to_matching_machines(cluster):
    p_id = cluster.add_project("tagged", project_files("demo"))
    ids = cluster.ok("jobdispatch", "do", p_id=p_id, c_id=cluster.demo_c_id, tags="gpu")
    jobs = wait_all(cluster, ids)
    assert {j["rid"] for j in jobs} == {3} and {j["state"] for j in jobs} == {"COMPLETED"}


def test_capacity_first_in_first_out_first_fit(cluster):
    # Machine 4 offers 2 cores; jobs need 1, 2, 1, 2, 1 of them.
    cluster.start_agent(4, autorun=True, slots=2)
    try:
        c_id = steps_package(
            cluster, "sleeper", '<ExeArgument id="s" type="exec" value="sleep 1" priority="1"/>'
        )
        p_id = cluster.add_project("cap", {"para.xml": sweep_para(range(5), ncpus=[1, 2, 1, 2, 1])})
        ids = cluster.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=4)
        jobs = wait_all(cluster, ids, timeout=60)
    finally:
        cluster.stop("agent4")
    assert [j["state"] for j in jobs] == ["COMPLETED"] * 5
    spans = [(j["steps"][0]["start_time"], j["steps"][0]["end_time"], j["ncpus"]) for j in jobs]
    moments = sorted({t for s, e, _ in spans for t in (s, e)})
    busiest = max(sum(n for s, e, n in spans if s <= t < e) for t in moments)
    assert busiest <= 2
    start = {j["job_id"]: j["steps"][0]["start_time"] for j in jobs}
    # First fit: the third job (1 core) did not wait behind the second (2 cores).
    assert start[ids[2]] < start[ids[1]]
    # First in, first out among jobs that fit alike.
    assert start[ids[0]] <= start[ids[2]] and start[ids[1]] <= start[ids[3]]


def moment(stamp):
    """An ISO time of central's or an agent's, as an aware datetime."""
    value = datetime.fromisoformat(stamp)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_short_jobs_are_claimed_ahead_of_free_cores_yet_run_one_at_a_time(cluster):
    # Machine 5 has one core and instant jobs: the next job is claimed and its
    # directory built while the one before runs its steps.
    cluster.start_agent(5, autorun=True, slots=1)
    try:
        steps = '<ExeArgument id="a" type="exec" value="true" priority="1"/>'
        steps += '<ExeArgument id="b" type="exec" value="true" priority="2"/>'
        c_id = steps_package(cluster, "instant", steps)
        p_id = cluster.add_project("ahead", {"para.xml": sweep_para(range(30))})
        ids = cluster.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=5)
        jobs = wait_all(cluster, ids, timeout=120)
    finally:
        cluster.stop("agent5")
    assert [j["state"] for j in jobs] == ["COMPLETED"] * len(ids)
    spans = sorted(
        (moment(j["steps"][0]["start_time"]), moment(j["steps"][-1]["end_time"]), j["job_id"])
        for j in jobs
    )
    # One core: no job's steps begin before the steps of the one ahead have ended.
    pairs = list(zip(spans, spans[1:], strict=False))
    assert all(end <= nxt for (_, end, _), (nxt, _, _) in pairs)
    claimed = {}
    for job_id in ids:
        events = cluster.ok("job", "events", job_id=job_id)
        (claim,) = [e for e in events if e["message"] == "claimed"]
        claimed[job_id] = moment(claim["time"])
    # Claimed ahead: some job was claimed while the one before it still ran its steps.
    ahead = [b for (_, end, _), (_, _, b) in pairs if claimed[b] < end]
    assert ahead, "no job was claimed before the job ahead of it ended"


def test_a_job_bigger_than_its_machine_is_refused_at_dispatch(cluster):
    c_id = steps_package(
        cluster, "big", '<ExeArgument id="s" type="exec" value="true" priority="1"/>'
    )
    p_id = cluster.add_project(
        "big", {"para.xml": b'<Para><Param name="NCPUS" type="int">64</Param></Para>'}
    )
    code, message = cluster.rpc("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=1)
    assert (code, message) == (-1, "resource machine 1 has 4 cores; a job needs 64")


def test_time_limit_kills_and_fails_the_job(cluster):
    c_id = steps_package(
        cluster, "slow", '<ExeArgument id="s" type="exec" value="sleep 60" priority="1"/>'
    )
    para = b'<Para><Param name="TIME_LIMIT" type="float">0.02</Param></Para>'
    (job_id,) = cluster.ok(
        "jobdispatch", "do", p_id=cluster.add_project("tl", {"para.xml": para}), c_id=c_id, rid=2
    )
    job = cluster.wait_state(job_id, "FAILED", timeout=30)
    assert job["error"] == "time limit of 0.02 min exceeded in step s"
    assert job["steps"][0]["state"] == "FAILED"


def test_duplicate_delivery_runs_once_and_unplaced_jobs_wait(cluster):
    c_id = steps_package(
        cluster, "once", '<ExeArgument id="s" type="exec" value="sleep 0.5" priority="1"/>'
    )
    p_id = cluster.add_project("once", {"para.xml": sweep_para([1])})
    # Machine 5 is known but has no agent yet: the job waits in its durable queue.
    cluster.ok("machine", "heartbeat", rid=5, name="m5", slots=4, autorun=True)
    (job_id,) = cluster.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=5)
    queue = job_queue(5)
    with Connection(cluster.config["AMQP_URI"]) as conn:
        producer = conn.Producer()
        for _ in range(2):
            producer.publish(
                {"job_id": job_id, "ncpus": 1},
                exchange=JOBS_EXCHANGE,
                routing_key=queue.routing_key,
                declare=[queue],
                delivery_mode=2,
            )
    assert cluster.ok("job", "query", job_id=job_id)["state"] == "QUEUED"
    assert cluster.queue(queue.name)[0] == 3
    cluster.start_agent(5, autorun=True)
    try:
        job = cluster.wait_state(job_id, FINAL)
        assert job["state"] == "COMPLETED"
        wait_for(lambda: deliveries_processed(cluster, 5), 30, what="the duplicates to be taken")
    finally:
        cluster.stop("agent5")
    events = cluster.ok("job", "events", job_id=job_id)
    assert [e["message"] for e in events].count("claimed") == 1
    assert len(step_starts(cluster, job_id, "s")) == 1


def test_agent_killed_mid_step_and_restarted_completes_the_job_once(cluster):
    slow = {"MIRROR_DEMO_SECONDS": "6"}
    cluster.stop("agent2")
    try:
        start_cluster_agent(cluster, 2, env=slow)
        p_id = cluster.add_project("restart", project_files("demo"))
        (job_id, *_) = cluster.ok("jobdispatch", "do", p_id=p_id, c_id=cluster.demo_c_id, rid=2)
        wait_for(
            lambda: cluster.ok("job", "query", job_id=job_id)["step"] == "flow",
            30,
            what="the flow step to run",
        )
        cluster.stop("agent2", signal.SIGKILL)
        wait_for(lambda: consumer_gone(cluster, 2), 30, what="the killed agent's consumer gone")
        start_cluster_agent(cluster, 2, env=slow)
        job = cluster.wait_state(job_id, FINAL, timeout=60)
    finally:
        # The tests after this one find agent 2 as the fixture started it.
        cluster.stop("agent2")
        start_cluster_agent(cluster, 2)
    assert job["state"] == "COMPLETED", job["error"]
    for step in ("grid", "flow", "post"):
        assert len(step_starts(cluster, job_id, step)) == 1
    assert set(cluster.ok("jobgetdata", "do", job_id=job_id)["result"]) == {"mesh", "force"}


def test_agent_killed_before_reporting_a_step_finds_it_in_its_journal(cluster):
    """A step not reported yet (shorter than report_delay so far) is not started twice."""
    lazy = {"report_delay": 120}
    c_id = steps_package(
        cluster,
        "journal",
        '<ExeArgument id="a" type="shell" value="echo run &gt;&gt; a.log; sleep 3" priority="1"/>'
        '<ExeArgument id="b" type="shell" value="echo run &gt;&gt; b.log" priority="2"/>',
        result='<Result><Data key="a" path="a.log"/></Result>',
    )
    cluster.start_agent(8, autorun=True, agent=lazy)
    try:
        p_id = cluster.add_project("journal", {"para.xml": sweep_para([1])})
        (job_id,) = cluster.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=8)
        wait_for(
            lambda: any(
                p.environ().get("MIRROR_STEP") == "a"
                for p in job_processes(job_id, under=cluster.tmp)
            ),
            30,
            what="step a to start",
        )
        # Central has not heard of the step: only the agent's journal knows it runs.
        assert cluster.ok("job", "query", job_id=job_id)["state"] == "PREPARING"
        cluster.stop("agent8", signal.SIGKILL)
        cluster.start_agent(8, autorun=True, agent=lazy)
        job = cluster.wait_state(job_id, FINAL, timeout=60)
    finally:
        cluster.stop("agent8")
    assert job["state"] == "COMPLETED", job["error"]
    for name in ("a", "b"):
        assert (Path(job["path"]) / f"{name}.log").read_text() == "run\n"
        assert len(step_starts(cluster, job_id, name)) == 1
    # Never reported RUNNING, the job started when its first step did.
    assert job["start_time"] == job["steps"][0]["start_time"]


def test_a_step_not_reported_yet_is_killed_with_its_job(cluster):
    c_id = steps_package(
        cluster, "lazykill", '<ExeArgument id="s" type="exec" value="sleep 60" priority="1"/>'
    )
    cluster.start_agent(9, autorun=True, agent={"report_delay": 120})
    try:
        p_id = cluster.add_project("lazykill", {"para.xml": sweep_para([1])})
        (job_id,) = cluster.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=9)
        wait_for(lambda: job_processes(job_id, under=cluster.tmp), 30, what="the step to start")
        assert cluster.ok("job", "query", job_id=job_id)["state"] == "PREPARING"
        assert cluster.ok("job", "cancel", job_id=job_id) == []
        job = cluster.wait_state(job_id, FINAL, timeout=30)
        assert job["state"] == "KILLED"
        assert [(s["id"], s["state"]) for s in job["steps"]] == [("s", "KILLED")]
        wait_for(
            lambda: not job_processes(job_id, under=cluster.tmp), 15, what="the step to be stopped"
        )
    finally:
        cluster.stop("agent9")


def test_machine_lost_for_good_has_its_jobs_queued_again(cluster):
    c_id = steps_package(
        cluster,
        "mover",
        '<ExeArgument id="s" type="shell" value="sleep 3; echo done &gt; out.txt" priority="1"/>',
        result='<Result><Data key="out" path="out.txt"/></Result>',
    )
    # The most free cores: an unpinned job goes there, and may move when it is lost.
    cluster.start_agent(6, autorun=True, slots=16)
    try:
        (job_id,) = cluster.ok(
            "jobdispatch",
            "do",
            p_id=cluster.add_project("mv", {"para.xml": sweep_para([1])}),
            c_id=c_id,
        )
        assert cluster.wait_state(job_id, "RUNNING")["rid"] == 6
    finally:
        cluster.stop("agent6", signal.SIGKILL)
    # Silent past RECONCILER.lost_after: queued again, placed on a live machine, run there.
    job = cluster.wait_state(job_id, "COMPLETED", timeout=60)
    assert job["rid"] in (1, 2, 3)
    messages = [e["message"] for e in cluster.ok("job", "events", job_id=job_id)]
    assert "resource machine 6 stopped sending heartbeats; queued again" in messages


def test_broker_connection_cut_and_restored_loses_nothing(cluster):
    cutter = CutterProcess()
    vhost_uri = cluster.config["AMQP_URI"].replace(":5672/", f":{cutter.port}/")
    assert str(cutter.port) in vhost_uri
    try:
        cluster.start_agent(7, autorun=True, amqp_uri=vhost_uri, env=FAST_DEMO)
        c_id = steps_package(
            cluster, "cut", '<ExeArgument id="s" type="exec" value="sleep 2" priority="1"/>'
        )
        p_id = cluster.add_project("cut", {"para.xml": sweep_para(range(6))})
        ids = cluster.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=7)
        wait_for(
            lambda: any(cluster.ok("job", "query", job_id=j)["state"] == "RUNNING" for j in ids),
            30,
            what="a job running",
        )
        running = wait_for(
            lambda: [j for j in ids if job_processes(j, under=cluster.tmp)],
            30,
            what="a step process running",
        )
        cutter.cut()
        # The link stays down until the broker has dropped the agent and a step has
        # ended meanwhile: its report must wait for the link to come back.
        wait_for(lambda: consumer_gone(cluster, 7), 30, what="the broker to drop agent 7")
        wait_for(
            lambda: any(not job_processes(j, under=cluster.tmp) for j in running),
            30,
            what="a step ended while cut",
        )
        cutter.restore()
        jobs = wait_all(cluster, ids, timeout=120)
        assert [j["state"] for j in jobs] == ["COMPLETED"] * 6, [j["error"] for j in jobs]
        runs = {j: len(step_starts(cluster, j, "s")) for j in ids}
        assert set(runs.values()) == {1}, runs
    finally:
        cluster.stop("agent7")
        cutter.close()


def test_mirror_demo_runs_the_sweep_and_prints_results(cluster):
    done = subprocess.run(
        cluster.command("demo"), cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" COMPLETED") >= 3
    assert '"force": "ftp://job' in done.stdout and "mirror:mirror@" not in done.stdout
    assert "curl 'http://" in done.stdout
