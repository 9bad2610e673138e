"""Live progress: a running step's Progress file shows in its job within about a second of
changing, and a Progress file that never appears is warned of in the job's events."""

import re
from pathlib import Path

import pytest

from tests.integration.conftest import make_package
from tests.mesh import Mesh, wait_for

# Each value waits for the test to acknowledge it: no timing, only conditions.
COUNTING = (
    "for i in 1 2 3; do echo &quot;$i 4&quot; &gt; progress.txt; "
    "while [ ! -e ack$i ]; do sleep 0.05; done; done; echo &quot;4 4&quot; &gt; progress.txt"
)
WAITING = "while [ ! -e ack ]; do sleep 0.05; done"

PARA = b'<Para><Param name="NCPUS" type="int">1</Param></Para>'


def package(name, value, progress):
    return make_package(
        f'<Adapter name="{name}">\n<Steps>\n'
        f'<ExeArgument id="run" type="shell" value="{value}" priority="1"/>\n'
        f'</Steps>\n<Process><Progress path="{progress}"/></Process>\n</Adapter>'
    )


@pytest.fixture(scope="module")
def slow_monitor(tmp_path_factory, amqp_uri):
    """An autorun mesh whose periodic monitoring report comes once a minute only."""
    monitor = {"interval": 60, "poll": 0.5, "progress_missing_after": 3}
    mesh = Mesh(tmp_path_factory.mktemp("live"), amqp_uri, MONITOR=monitor)
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True)
        yield mesh
    finally:
        mesh.close()


def dispatch(mesh, name, value, progress):
    c_id = mesh.add_package(name, package(name, value, progress))
    p_id = mesh.add_project(name, {"para.xml": PARA})
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    return job_id


def warnings(mesh, job_id):
    return [
        e["message"]
        for e in mesh.ok("job", "events", job_id=job_id)
        if "warning: Progress file" in (e["message"] or "")
    ]


def test_progress_shows_while_the_step_runs(slow_monitor):
    job_id = dispatch(slow_monitor, "counting", COUNTING, "progress.txt")
    for i in (1, 2, 3):
        job = wait_for(
            lambda i=i: (
                (j := slow_monitor.ok("job", "query", job_id=job_id))["process"].get("currentstep")
                == str(i)
                and j
            ),
            20,
            what=f"progress {i}/4 of job {job_id}",
        )
        assert job["state"] == "RUNNING" and job["process"]["allstep"] == "4"
        (Path(job["path"]) / f"ack{i}").touch()
    job = slow_monitor.wait_state(job_id, ("COMPLETED", "FAILED"))
    assert job["state"] == "COMPLETED"
    assert job["process"] == {"currentstep": "4", "allstep": "4"}
    assert warnings(slow_monitor, job_id) == []


def test_a_progress_file_that_never_appears_is_warned_of_while_the_step_runs(slow_monitor):
    job_id = dispatch(slow_monitor, "typo-path", WAITING, "nothere/progress.txt")
    (warning,) = wait_for(
        lambda: warnings(slow_monitor, job_id), 30, what=f"a Progress warning of job {job_id}"
    )
    assert re.fullmatch(
        r"warning: Progress file nothere/progress\.txt \(in the job directory\) has not "
        r"appeared after step run ran \d+ s; progress shows step counts instead",
        warning,
    )
    job = slow_monitor.ok("job", "query", job_id=job_id)
    assert job["state"] == "RUNNING"
    (Path(job["path"]) / "ack").touch()
    assert slow_monitor.wait_state(job_id, ("COMPLETED", "FAILED"))["state"] == "COMPLETED"
    assert len(warnings(slow_monitor, job_id)) == 1


def test_a_short_step_without_its_progress_file_is_warned_of_at_its_end(slow_monitor):
    job_id = dispatch(slow_monitor, "short", "true", "nothere/progress.txt")
    assert slow_monitor.wait_state(job_id, ("COMPLETED", "FAILED"))["state"] == "COMPLETED"
    (warning,) = warnings(slow_monitor, job_id)
    assert (
        "warning: Progress file nothere/progress.txt (in the job directory) has not appeared "
        "when step run ended; progress shows step counts instead"
    ) in warning
