"""Failures that explain themselves, on a real mesh: partial results, a failed job's directory,
logs of a job that never ran a step, events in time order, the failed step named once."""

import uuid

import pytest

from services.client import Mirror, MirrorError
from tests.integration.conftest import make_package
from tests.integration.sweeps import sweep_para
from tests.integration.test_cli import mirror, ok
from tests.mesh import wait_for

PARTIAL = """<Adapter name="partial">
  <Steps>
    <ExeArgument id="a" type="shell" priority="1" value="echo one &gt; one.txt; echo said-a"/>
    <ExeArgument id="b" type="exec" priority="2" value="true"/>
  </Steps>
  <Result>
    <Data key="one" path="one.txt"/>
    <Data key="two" path="two.txt"/>
  </Result>
</Adapter>"""

# Step b's working directory, from a parameter, leaves the job directory: b fails
# before it starts.
ESCAPING = """<Adapter name="escaping">
  <Steps>
    <ExeArgument id="a" type="exec" priority="1" value="true"/>
    <ExeArgument id="b" type="exec" priority="2" value="true" workpath="{where}"/>
  </Steps>
</Adapter>"""

SLEEPING = """<Adapter name="sleeping">
  <Steps><ExeArgument id="a" type="exec" priority="1" value="sleep 60"/></Steps>
</Adapter>"""


@pytest.fixture(scope="module")
def mesh(autorun_mesh):
    """The autorun mesh plus machine 2: manual, with a 1 KiB cap on fetched directories."""
    autorun_mesh.start_agent(2, agent={"directory_cap": "1KiB"})
    return autorun_mesh


def run(mesh, adapter, rid=None, files=None, para=""):
    """Register ``adapter`` (with package ``files``), dispatch one job of it; its id."""
    tag = uuid.uuid4().hex[:6]
    c_id = mesh.add_package(f"{tag}", make_package(adapter, files))
    p_id = mesh.add_project(f"f{tag}", {"para.xml": sweep_para([1], extra=para)})
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=rid)
    return job_id


def client(mesh):
    return Mirror(mesh.config["AMQP_URI"], mesh.exchange, timeout=20)


def assert_time_ordered(mesh, job_id):
    times = [e["time"] for e in mesh.ok("job", "events", job_id=job_id)]
    assert times == sorted(times), times


def test_a_job_missing_a_result_publishes_the_others_and_its_directory(mesh, tmp_path):
    job_id = run(mesh, PARTIAL)
    job = mesh.wait_state(job_id, ("COMPLETED", "FAILED", "KILLED"))
    assert job["state"] == "FAILED"
    assert job["error"] == "results not produced: two (two.txt); published: one"
    assert set(mesh.ok("jobgetdata", "do", job_id=job_id)["result"]) == {"one"}
    assert_time_ordered(mesh, job_id)

    ok(mesh, "get", str(job_id), str(tmp_path / "results"))
    assert (tmp_path / "results" / "one" / "one.txt").read_text() == "one\n"

    out = ok(mesh, "get", str(job_id), "--all", str(tmp_path / "cli"))
    assert out.startswith(f"job {job_id}: directory, ")
    assert (tmp_path / "cli" / "one.txt").read_text() == "one\n"
    assert (tmp_path / "cli" / ".mirror" / "steps").is_file()

    with client(mesh) as c:
        got = c.get(job_id, tmp_path / "client")
    assert (tmp_path / "client" / "one.txt").read_text() == "one\n"
    assert got["files"] == sum(1 for p in (tmp_path / "client").rglob("*") if p.is_file())


def test_the_failed_step_is_the_one_the_step_column_names(mesh):
    job_id = run(mesh, ESCAPING, para='<Param name="where" type="str">../elsewhere</Param>')
    job = mesh.wait_state(job_id, ("COMPLETED", "FAILED", "KILLED"))
    assert job["state"] == "FAILED" and job["error"].startswith("step b: "), job["error"]
    assert job["step"] == "b"
    assert [s["state"] for s in job["steps"]] == ["DONE", "FAILED"]
    assert_time_ordered(mesh, job_id)
    table = ok(mesh, "jobs", "--project", str(job["p_id"]))
    rows = [line.split() for line in table.splitlines()]
    row = next((r for r in rows if r and r[0] == str(job_id)), None)
    assert row is not None and row[4:6] == ["FAILED", "b"], table


def test_a_killed_jobs_directory_can_be_fetched(mesh, tmp_path):
    job_id = run(mesh, SLEEPING)
    wait_for(
        lambda: mesh.ok("job", "query", job_id=job_id)["steps"][0]["state"] == "RUNNING",
        60,
        what="step a running",
    )
    with client(mesh) as c:
        c.kill(job_id)
        mesh.wait_state(job_id, "KILLED")
        c.get(job_id, tmp_path / "killed")
    assert (tmp_path / "killed" / ".mirror" / "steps").is_file()
    assert_time_ordered(mesh, job_id)


def test_logs_of_a_job_that_never_ran_a_step_say_so(mesh, tmp_path):
    job_id = run(mesh, SLEEPING, rid=2)
    waiting = mirror(mesh, "logs", str(job_id))
    assert waiting.returncode == 0 and waiting.stdout == ""
    assert waiting.stderr == f"mirror: job {job_id} is QUEUED: no output yet, no step has started\n"
    mesh.ok("job", "cancel", job_id=job_id)
    mesh.wait_state(job_id, "KILLED")
    for args in (["logs", str(job_id)], ["logs", "--follow", str(job_id)]):
        ended = mirror(mesh, *args)
        assert ended.returncode == 1 and ended.stdout == ""
        assert ended.stderr.startswith(f"mirror: job {job_id} KILLED before any step ran: ")
    # No directory was built: fetching it says why.
    fetched = mirror(mesh, "get", str(job_id), "--all", str(tmp_path / "none"))
    assert fetched.returncode == 1
    assert fetched.stderr == (
        f"mirror: job {job_id} has no directory to fetch: it KILLED before one was built\n"
    )


def test_a_directory_over_the_cap_is_refused(mesh, tmp_path):
    job_id = run(mesh, SLEEPING, rid=2, files={"big.dat": "0" * 4096})
    mesh.ok("jobdirbuild_2", "do", job_id=job_id)
    mesh.ok("job", "cancel", job_id=job_id)
    mesh.wait_state(job_id, "KILLED")
    with client(mesh) as c, pytest.raises(MirrorError, match="over the 1.0 KiB a fetch may take"):
        c.get(job_id, tmp_path / "capped")
    assert not (tmp_path / "capped").exists()
