"""An autorun agent rides out central being away: every job ends COMPLETED, each step run once.

Central away for 20 s, and central away for longer than ``RECONCILER.lost_after``:
the restarted reconciler does not count the beats it missed as the agent's silence.
"""

import os
import signal
import time
from pathlib import Path

import psutil

from adapters.bundled import project_files
from services.agent import ledger
from tests.integration.sweeps import steps_package, sweep_para, wait_all
from tests.mesh import Mesh, wait_for
from tests.stepprocs import job_processes

OUTAGE = 20
STEPS = (
    '<ExeArgument id="one" type="exec" value="sleep 3" priority="1"/>'
    '<ExeArgument id="two" type="exec" value="sleep 3" priority="2"/>'
)


def processes_in(job):
    """Live step processes of ``job``: its id alone may be another mesh's job on this machine."""
    found = []
    for proc in job_processes(job["job_id"]):
        try:
            if proc.environ().get("MIRROR_JOB_DIR") == job["path"]:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_jobs_run_once_through_an_outage_of_central(tmp_path, amqp_uri):
    # A short RPC timeout and one retry: the agent's client gives up within seconds,
    # so its reports go through the on-disk outbox. The reconciler must not count
    # the agent lost for the beats central missed while it was away.
    mesh = Mesh(
        tmp_path,
        amqp_uri,
        RPC={"timeout": 3, "retries": 1},
        RECONCILER={"interval": 1, "lost_after": 300},
    )
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, slots=4)
        c_id = steps_package(mesh, "outage", STEPS)
        files = dict(project_files("trivial"))
        files["para.xml"] = sweep_para(range(8))
        ids = mesh.ok("jobdispatch", "do", p_id=mesh.add_project("outage", files), c_id=c_id)
        assert len(ids) == 8
        wait_for(
            lambda: any(mesh.ok("job", "query", job_id=j)["state"] == "RUNNING" for j in ids),
            60,
            what="a job running",
        )
        stopped = time.monotonic()
        mesh.stop("central")
        spool = Path(mesh.config["DATA_DIR"]) / "work" / "rid1" / ".outbox"
        wait_for(lambda: list(spool.glob("*.json")), OUTAGE, what="reports kept on disk")
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
        mesh.start("central", "central")

        jobs = wait_all(mesh, ids, timeout=180)
        assert [j["state"] for j in jobs] == ["COMPLETED"] * 8, [j["error"] for j in jobs]
        for job in jobs:
            runs = ledger.parse((Path(job["path"]) / ".mirror" / "steps").read_text())
            assert sorted(r.step for r in runs) == ["one", "two"], (job["job_id"], runs)
            assert all(r.code == 0 for r in runs)
            assert processes_in(job) == []
        wait_for(lambda: not list(spool.glob("*.json")), 30, what="the outbox emptied")
        assert "report waits for central" in mesh.log("agent1")
    finally:
        mesh.close()


def assert_completed_untouched(mesh, job_id, seen, timeout=60):
    """Job ``job_id`` (steps ``one``, ``two``) ends COMPLETED on machine 1 at attempt 1.

    Each step ran once, and nothing judged machine 1 lost: no event names its
    heartbeats, and central's log after offset ``seen`` queued nothing again.
    """
    job = mesh.wait_state(job_id, ("COMPLETED", "FAILED", "KILLED"), timeout=timeout)
    assert (job["state"], job["rid"], job["attempts"]) == ("COMPLETED", 1, 1), job
    runs = ledger.parse((Path(job["path"]) / ".mirror" / "steps").read_text())
    assert sorted((r.step, r.code) for r in runs) == [("one", 0), ("two", 0)], runs
    messages = [e["message"] for e in mesh.ok("job", "events", job_id=job_id)]
    assert not [m for m in messages if "heartbeats" in m], messages
    assert "queued again" not in mesh.log("central")[seen:]


LOST_AFTER = 6
GRACE_STEPS = (
    '<ExeArgument id="one" type="exec" value="sleep 20" priority="1"/>'
    '<ExeArgument id="two" type="exec" value="true" priority="2"/>'
)


def test_central_away_longer_than_lost_after_moves_no_job(tmp_path, amqp_uri):
    mesh = Mesh(
        tmp_path,
        amqp_uri,
        RPC={"timeout": 3, "retries": 1},
        RECONCILER={"interval": 1, "lost_after": LOST_AFTER},
    )
    agent = None
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, slots=1)
        c_id = steps_package(mesh, "grace", GRACE_STEPS)
        files = {"para.xml": sweep_para([1])}
        (job_id,) = mesh.ok("jobdispatch", "do", p_id=mesh.add_project("grace", files), c_id=c_id)
        mesh.wait_state(job_id, "RUNNING")
        # The agent is frozen for the outage (its step, in a session of its own,
        # runs on): beats it would queue for the stopped central would be taken
        # at its restart, before the reconciler's first pass; frozen, it sends
        # none, so the restarted central finds machine 1 silent for the whole outage.
        agent = mesh.procs["agent1"]
        os.kill(agent.pid, signal.SIGSTOP)
        mesh.stop("central", signal.SIGKILL)
        time.sleep(LOST_AFTER + 4)  # the outage itself, longer than lost_after
        seen = len(mesh.log("central"))
        mesh.start("central", "central")
        wait_for(
            lambda: (
                "Machine<1> silent for 6s, but heartbeats watched for only"
                in mesh.log("central")[seen:]
            ),
            60,
            what="the restarted reconciler to see machine 1 silent and not judge it lost",
        )
        os.kill(agent.pid, signal.SIGCONT)
        agent = None

        assert_completed_untouched(mesh, job_id, seen)
    finally:
        if agent is not None:
            os.kill(agent.pid, signal.SIGCONT)
        mesh.close()
