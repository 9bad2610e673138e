"""A Slurm-executor machine against the real one-node Slurm that .ci/slurm.sh starts.

Kept to a few short jobs: this Slurm runs about two trivial batch jobs a second.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from adapters.bundled import package_zip, project_files
from services.agent import slurm
from services.common.jobstates import FINAL
from tests.integration.sweeps import consumer_gone, step_starts, steps_package, sweep_para, wait_all
from tests.mesh import Mesh, wait_for


def slurm_up():
    """Why Slurm cannot be used here, or None."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no Slurm here (sinfo, sbatch not found): run .ci/slurm.sh"
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"sinfo failed: {done.stderr.strip()} (run .ci/slurm.sh)"
    return None


pytestmark = pytest.mark.skipif(slurm_up() is not None, reason=str(slurm_up()))

LOCAL, SLURM = 1, 2
SLURM_AGENT = {"executor": "slurm", "slurm": {"partition": "work", "poll_interval": 0.3}}
# In the Slurm agent's environment: a step must never see it.
SECRET = {"MIRROR_TEST_SECRET": "not-for-steps"}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, amqp_uri):
    """Core services, a local autorun agent (rid 1) and a Slurm autorun agent (rid 2)."""
    # A restarted agent on a loaded machine may take more than the usual 5 s to
    # come back: its running job must not be queued again meanwhile.
    mesh = Mesh(tmp_path_factory.mktemp("slurm"), amqp_uri, RECONCILER={"lost_after": 60})
    try:
        mesh.start_core()
        mesh.start_agent(LOCAL, autorun=True, slots=2)
        mesh.start_agent(SLURM, autorun=True, slots=2, agent=SLURM_AGENT, env=SECRET)
        mesh.demo_c_id = mesh.add_package("demo", package_zip("demo"))
        yield mesh
    finally:
        mesh.close()


def batch_job(slurm_id):
    """Slurm's parsed record of a batch job, or None once it forgot it."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", str(slurm_id)], capture_output=True, text=True
    ).stdout
    fields = slurm.parse_scontrol(out)
    return fields if fields.get("JobId") else None


def batch_state(slurm_id):
    return slurm.job_state(batch_job(slurm_id) or {})


def results(job):
    root = Path(job["path"])
    return {name: (root / name).read_text() for name in ("GRID/mesh.dat", "POST/force.dat")}


def test_demo_sweep_on_slurm_gives_the_results_of_a_local_run(mesh):
    p_id = mesh.add_project("demo", project_files("demo"))
    local = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=mesh.demo_c_id, rid=LOCAL)
    batch = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=mesh.demo_c_id, rid=SLURM)
    jobs = wait_all(mesh, local + batch, timeout=180)
    assert [j["state"] for j in jobs] == ["COMPLETED"] * 6, [j["error"] for j in jobs]
    by_id = {j["job_id"]: j for j in jobs}
    for here, there in zip(local, batch, strict=True):
        assert results(by_id[here]) == results(by_id[there])
        assert set(mesh.ok("jobgetdata", "do", job_id=there)["result"]) == {"mesh", "force"}
        assert by_id[here]["slurm"] is None
        record = by_id[there]["slurm"]
        # The last step's batch job, where Slurm ran it.
        assert record["step"] == "post" and record["partition"] == "work"
        assert record["nodelist"] == socket.gethostname()
        assert all(len(step_starts(mesh, there, s)) == 1 for s in ("grid", "flow", "post"))
    # Every step was a batch job of its own, named after the machine, job and step.
    ledger = (Path(by_id[batch[0]]["path"]) / ".mirror" / "steps").read_text()
    assert ledger.count("\nslurm ") == 3


def test_kill_cancels_the_batch_job(mesh):
    c_id = steps_package(
        mesh, "sleeper", '<ExeArgument id="s" type="exec" value="sleep 120" priority="1"/>'
    )
    p_id = mesh.add_project("kill", {"para.xml": sweep_para([1])})
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=SLURM)
    job = mesh.wait_state(job_id, "RUNNING", timeout=60)
    slurm_id = job["slurm"]["job_id"]
    wait_for(lambda: batch_state(slurm_id) == "RUNNING", 30, what="the batch job to run")
    assert mesh.ok("job", "cancel", job_id=job_id) == []
    job = mesh.wait_state(job_id, FINAL, timeout=30)
    assert job["state"] == "KILLED"
    assert [(s["id"], s["state"]) for s in job["steps"]] == [("s", "KILLED")]
    wait_for(
        lambda: batch_state(slurm_id) in (None, "CANCELLED"), 30, what="the batch job cancelled"
    )


def test_time_limit_fails_the_job_and_cancels_its_batch_job(mesh):
    c_id = steps_package(
        mesh, "slow", '<ExeArgument id="s" type="exec" value="sleep 120" priority="1"/>'
    )
    para = b'<Para><Param name="TIME_LIMIT" type="float">0.05</Param></Para>'
    p_id = mesh.add_project("tl", {"para.xml": para})
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=SLURM)
    job = mesh.wait_state(job_id, FINAL, timeout=60)
    assert job["state"] == "FAILED"
    assert job["error"] == "time limit of 0.05 min exceeded in step s"
    assert job["steps"][0]["state"] == "FAILED"
    slurm_id = job["slurm"]["job_id"]
    # Slurm was given the limit too, whole minutes, as a backstop.
    assert (batch_job(slurm_id) or {"TimeLimit": "00:01:00"})["TimeLimit"] == "00:01:00"
    wait_for(
        lambda: batch_state(slurm_id) in (None, "CANCELLED"), 30, what="the batch job cancelled"
    )


def test_agent_killed_and_restarted_while_its_batch_job_runs_completes_it_once(mesh):
    c_id = steps_package(
        mesh,
        "restart",
        # Step a runs until the test lets it end: its batch job outlives the agent for sure.
        '<ExeArgument id="a" type="shell" value="until [ -f go ]; do sleep 0.2; done; '
        'echo run &gt;&gt; a.log" priority="1"/>'
        '<ExeArgument id="b" type="shell" value="echo run &gt;&gt; b.log" priority="2"/>',
        result='<Result><Data key="a" path="a.log"/></Result>',
    )
    p_id = mesh.add_project("restart", {"para.xml": sweep_para([1])})
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=SLURM)
    job = mesh.wait_state(job_id, "RUNNING", timeout=60)
    slurm_id = job["slurm"]["job_id"]
    mesh.stop(f"agent{SLURM}", signal.SIGKILL)
    wait_for(lambda: consumer_gone(mesh, SLURM), 30, what="the killed agent's consumer gone")
    # The batch job lives on without the agent.
    assert batch_state(slurm_id) in ("PENDING", "RUNNING")
    mesh.start_agent_again(SLURM)
    (Path(job["path"]) / "go").touch()
    job = mesh.wait_state(job_id, FINAL, timeout=60)
    assert job["state"] == "COMPLETED", job["error"]
    for name in ("a", "b"):
        assert (Path(job["path"]) / f"{name}.log").read_text() == "run\n"
        assert len(step_starts(mesh, job_id, name)) == 1
    assert job["slurm"]["step"] == "b" and job["slurm"]["job_id"] > slurm_id


def test_the_machine_api_on_a_slurm_machine_speaks_slurm_ids(mesh):
    base = f"{mesh.base_url}/api"
    machine = mesh.machine(SLURM)["name"]
    conf = json.dumps({"job_name": "newt-on-slurm", "time_limit": 5})
    answer = requests.post(
        f"{base}/job/{machine}/",
        data={"jobscript": "#!/bin/sh\nenv\nsleep 120\n", "jobconf": conf},
        timeout=60,
    ).json()
    assert answer["status"] == "OK", answer
    slurm_id = answer["output"]["jobid"]
    (summary,) = mesh.ok("job", "list", rid=SLURM, name="newt-on-slurm")
    assert str(mesh.ok("job", "query", job_id=summary["job_id"])["slurm"]["job_id"]) == slurm_id
    wait_for(lambda: batch_state(slurm_id) == "RUNNING", 30, what="the batch job to run")

    def environment():
        out = mesh.ok("job", "logs", job_id=summary["job_id"])["stdout"]
        return out if "SLURM_JOB_ID=" in out else None

    # The step's allowed environment and Slurm's job variables; nothing else of the agent's.
    seen = wait_for(environment, 30, what="the batch job's environment in its stdout")
    assert f"SLURM_JOB_ID={slurm_id}\n" in seen and "MIRROR_RUN_TOKEN=" in seen
    assert "MIRROR_TEST_SECRET" not in seen

    def placed():
        queue = requests.get(f"{base}/job/{machine}", timeout=30).json()["output"]
        return queue if queue["nodelist"].get(slurm_id) == socket.gethostname() else None

    queue = wait_for(placed, 30, what="the queue to show the Slurm node")
    assert queue["id"][slurm_id] == slurm_id and queue["partition"][slurm_id] == "work"
    one = requests.get(f"{base}/job/{machine}/{slurm_id}", timeout=30).json()["output"]
    assert one["id"] == {slurm_id: slurm_id} and one["status"][slurm_id] == "Running"
    status, rest = mesh.http(f"/jobs/query/{summary['job_id']}")
    assert status == 200 and rest["detail"]["slurm_job_id"] == slurm_id
    assert rest["detail"]["node_list"] == socket.gethostname()

    def probed():
        entry = requests.get(f"{base}/job", timeout=30).json()["output"][machine]
        return entry if entry["queue"]["R"] >= 1 and "work" in entry["info"] else None

    # The cluster's figures, from the agent's sinfo/squeue probe.
    entry = wait_for(probed, 30, what="the overview to show the Slurm probe")
    assert sum(entry["info"]["work"].values()) == os.cpu_count()
    assert 0 <= entry["queue"]["time"] <= 30

    killed = requests.delete(f"{base}/job/{machine}/{slurm_id}", timeout=60).json()
    assert killed["status"] == "OK", killed
    assert mesh.wait_state(summary["job_id"], FINAL, timeout=30)["state"] == "KILLED"
    wait_for(
        lambda: batch_state(slurm_id) in (None, "CANCELLED"), 30, what="the batch job cancelled"
    )
    gone = requests.get(f"{base}/job/{machine}/{int(slurm_id) + 1000}", timeout=30).json()
    assert (gone["status_code"], gone["error"]) == (
        404,
        f"job is not existed , job : {int(slurm_id) + 1000}",
    )
