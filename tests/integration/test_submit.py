"""Script submissions: jobdispatch.submit, job.cancel and live logs from the agent."""

import pytest

from services.common.jobstates import FINAL
from tests.mesh import wait_for


def logs(mesh, job_id, **kwargs):
    return mesh.ok("jobagent_1", "logs", job_id=job_id, **kwargs)


def test_a_script_runs_and_its_output_is_readable(autorun_mesh):
    job_id = autorun_mesh.ok(
        "jobdispatch",
        "submit",
        script="#!/bin/sh\necho hello $GREETING\necho oops >&2\n",
        name="hi",
        environment={"GREETING": "world"},
    )
    job = autorun_mesh.wait_state(job_id, FINAL)
    assert job["state"] == "COMPLETED", job["error"]
    assert job["name"] == "hi" and job["environment"] == {"GREETING": "world"}
    assert next(j for j in autorun_mesh.ok("job", "list") if j["job_id"] == job_id)["name"] == "hi"
    out = logs(autorun_mesh, job_id)
    assert (out["step"], out["stdout"], out["stderr"]) == ("script", "hello world\n", "oops\n")
    assert out["offset_out"] == len("hello world\n")
    assert logs(autorun_mesh, job_id, offset_out=6)["stdout"] == "world\n"


def test_a_shebang_line_is_honoured(autorun_mesh):
    job_id = autorun_mesh.ok(
        "jobdispatch",
        "submit",
        script="#!/usr/bin/env python3\nimport sys\nprint('py', sys.version_info[0])\n",
    )
    assert autorun_mesh.wait_state(job_id, FINAL)["state"] == "COMPLETED"
    assert logs(autorun_mesh, job_id)["stdout"] == "py 3\n"


def test_working_directory_and_output_inside_allowed_roots(autorun_mesh):
    job_id = autorun_mesh.ok(
        "jobdispatch",
        "submit",
        script="pwd; echo data > made.txt",
        cwd=str(autorun_mesh.shared),
        stdout="run-%j.out",
        stderr="run-%j.err",
    )
    assert autorun_mesh.wait_state(job_id, FINAL)["state"] == "COMPLETED"
    assert (autorun_mesh.shared / f"run-{job_id}.out").read_text() == f"{autorun_mesh.shared}\n"
    assert (autorun_mesh.shared / "made.txt").read_text() == "data\n"
    assert logs(autorun_mesh, job_id)["stdout"] == f"{autorun_mesh.shared}\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"cwd": "/etc"},
            "current_working_directory '/etc' is outside the allowed roots of resource machine 1",
        ),
        ({"stdout": "/etc/x.out"}, "standard_output '/etc/x.out' is outside the allowed roots"),
        ({"cwd": "relative/dir"}, "current_working_directory must be an absolute path"),
        ({"ncpus": 0}, "ncpus must be a positive integer, got 0"),
        ({"time_limit": "soon"}, "time_limit must be a number of minutes, got 'soon'"),
        ({"environment": {"BAD-NAME": "x"}}, "environment variable name 'BAD-NAME' is not valid"),
        ({"script": "  "}, "script must be a non-empty string"),
    ],
)
def test_bad_submissions_are_refused_naming_the_problem(autorun_mesh, kwargs, message):
    args = {"script": "true", **kwargs}
    code, text = autorun_mesh.rpc("jobdispatch", "submit", **args)
    assert code == -1 and message in text


def test_submission_id_makes_a_submit_idempotent(autorun_mesh):
    first = autorun_mesh.ok("jobdispatch", "submit", script="true", submission_id="abc-1")
    assert autorun_mesh.ok("jobdispatch", "submit", script="true", submission_id="abc-1") == first
    assert autorun_mesh.ok("jobdispatch", "submit", script="true", submission_id="abc-2") != first


def test_preferred_machine_by_name(autorun_mesh):
    job_id = autorun_mesh.ok("jobdispatch", "submit", script="true", preferred="alpha")
    assert autorun_mesh.ok("job", "query", job_id=job_id)["rid"] == 1
    # An unknown preference falls back to any machine with room.
    job_id = autorun_mesh.ok("jobdispatch", "submit", script="true", preferred="nowhere")
    assert autorun_mesh.ok("job", "query", job_id=job_id)["rid"] == 1


def test_live_output_while_the_script_runs(autorun_mesh):
    job_id = autorun_mesh.ok("jobdispatch", "submit", script="echo first; sleep 3; echo second")
    wait_for(
        lambda: logs(autorun_mesh, job_id)["stdout"] == "first\n",
        15,
        what="the first line while running",
    )
    assert autorun_mesh.ok("job", "query", job_id=job_id)["state"] == "RUNNING"
    autorun_mesh.wait_state(job_id, FINAL)
    assert logs(autorun_mesh, job_id)["stdout"] == "first\nsecond\n"


def test_cancel_running_queued_and_finished_jobs(autorun_mesh):
    running = autorun_mesh.ok("jobdispatch", "submit", script="sleep 60")
    autorun_mesh.wait_state(running, "RUNNING")
    assert autorun_mesh.rpc("job", "cancel", job_id=running, reason="wrong inputs") == [0, []]
    job = autorun_mesh.wait_state(running, FINAL)
    assert job["state"] == "KILLED" and job["error"] == "wrong inputs"
    # Machine 8 is known but has no agent: the job waits queued and is cancelled in place.
    autorun_mesh.ok("machine", "heartbeat", rid=8, name="m8", slots=1)
    queued = autorun_mesh.ok("jobdispatch", "submit", script="true", rid=8)
    assert autorun_mesh.rpc("job", "cancel", job_id=queued) == [0, []]
    job = autorun_mesh.ok("job", "query", job_id=queued)
    assert job["state"] == "KILLED" and job["error"] == "cancelled by user"
    assert autorun_mesh.rpc("job", "cancel", job_id=queued) == [
        -1,
        f"job not running , jobid : {queued}",
    ]
