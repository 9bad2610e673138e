"""``mirror logs`` of a job whose steps never ran: which steps started, and what it says."""

from services.cli.jobs import no_step_ran, started_steps
from services.common.jobstates import STEP_RESET


def job(state, error=None, started=()):
    steps = [{"id": s, **STEP_RESET} for s in ("mesh", "solve")]
    for step in steps:
        if step["id"] in started:
            step.update(state="DONE", start_time="2026-11-30T10:00:00+00:00")
    return {"job_id": 42, "state": state, "error": error, "steps": steps}


def test_started_steps_are_those_with_a_run():
    assert started_steps(job("FAILED")) == []
    assert started_steps(job("RUNNING", started=["mesh"])) == ["mesh"]
    assert started_steps(job("RUNNING", started=["mesh"]), "solve") == []


def test_a_job_ended_before_any_step_says_so_with_its_error(capsys):
    assert no_step_ran(job("FAILED", "directory build of job 42 failed: disk full")) == 1
    assert capsys.readouterr().err == (
        "mirror: job 42 FAILED before any step ran: directory build of job 42 failed: disk full\n"
    )
    assert no_step_ran(job("KILLED", "killed by user", started=["mesh"]), "solve") == 1
    assert (
        capsys.readouterr().err == "mirror: job 42 KILLED before step solve ran: killed by user\n"
    )


def test_a_job_not_started_yet_says_it_has_no_output_yet(capsys):
    assert no_step_ran(job("QUEUED")) == 0
    assert (
        capsys.readouterr().err == "mirror: job 42 is QUEUED: no output yet, no step has started\n"
    )
    assert no_step_ran(job("RUNNING", started=["mesh"]), "solve") == 0
    assert capsys.readouterr().err == (
        "mirror: job 42 is RUNNING: no output yet, step solve has not started\n"
    )
