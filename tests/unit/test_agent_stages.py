"""The agent's stage functions against fakes of central and the file server, with real processes.

Each test lays out a job of the bundled ``trivial`` package (or one like it)
in a tmp work root, runs the stages a machine runs, and checks what reached
the fake central: the reports, their order, what each expected.
"""

import pytest
from agent_support import STEPS, TRIVIAL, make_job, prepared, run_to_end

from services.agent import processes, stages
from services.agent.steprun import finish_step, launch_step, reattach
from services.agent.watch import taken_away
from services.common.errors import MirrorError
from tests.mesh import wait_for


def test_manual_stages_report_each_state_in_turn(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    for _ in job["steps"]:
        run_to_end(rt, job)
    stages.recover(rt, job)

    states = [(changes.get("state"), expect) for changes, expect in rt.central.reports()]
    assert states[:2] == [("PREPARING", ["PREPARING"]), ("READY", ["PREPARING", "READY"])]
    assert states[2:8] == [("RUNNING", ["READY"]), ("READY", ["RUNNING"])] * 3
    assert states[8:] == [("COMPLETED", ["READY"])]
    record = rt.central.job
    assert record["state"] == "COMPLETED"
    assert [(s["state"], s["exit_code"]) for s in record["steps"]] == [("DONE", 0)] * 3
    assert record["result"] == {"result": "ftp://files/jobs/5/result/result/result.txt"}
    assert rt.files.uploaded["/jobs/5/result/result/result.txt"] == b"x = 2\n"


def test_a_repeated_stage_does_nothing(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    sent = len(rt.central.calls)
    stages.build_directory(rt, job)
    assert len(rt.central.calls) == sent
    assert rt.workspace.job_dirs(5) == [rt.workspace.root / "job5"]
    for _ in job["steps"]:
        run_to_end(rt, job)
    stages.recover(rt, job)
    sent = len(rt.central.calls)
    assert stages.recover(rt, job)["state"] == "COMPLETED"
    assert len(rt.central.calls) == sent


def test_autorun_stages_send_one_report_for_the_whole_job(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job, defer=True)
    for _ in job["steps"]:
        run_to_end(rt, job, autorun=True)
    assert rt.central.calls == []
    assert (rt.workspace.root / "job5" / ".mirror" / "pending.json").stat().st_size > 0

    stages.recover(rt, job)

    ((changes, expect),) = rt.central.reports()
    assert expect == ["PREPARING"] and changes["state"] == "COMPLETED"
    assert set(changes["steps"]) == {"prepare", "compute", "finish"}
    assert rt.central.job["state"] == "COMPLETED"
    assert (rt.workspace.root / "job5" / ".mirror" / "pending.json").read_text() == ""


def test_a_refused_running_report_stops_the_step_it_started(machine):
    job, served = make_job(TRIVIAL.replace(STEPS, STEPS.replace('"true"', '"sleep 30"')))
    rt = machine(job, served)
    prepared(rt, job)
    rt.central.refuse = "KILLED"

    with pytest.raises(MirrorError, match="is KILLED"):
        launch_step(rt, job)

    assert rt.running == {}
    (changes, _), *_ = reversed(rt.central.reports())
    assert changes["state"] == "RUNNING" and changes["pid"]
    assert not processes.alive(changes["pid"], changes["pid_start"])


def test_a_failing_step_fails_the_job_with_its_last_stderr_line(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    run_to_end(rt, job)
    (rt.workspace.root / "job5" / "input.txt").unlink()

    run_to_end(rt, job)

    changes, expect = rt.central.reports()[-1]
    assert changes["state"] == "FAILED" and expect == ["PREPARING", "READY", "RUNNING"]
    assert changes["error"].startswith("step compute exited with code 1: cp: ")
    assert "input.txt" in changes["error"]
    assert changes["steps"]["compute"]["exit_code"] == 1


def test_recover_fails_a_job_whose_result_is_missing(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    for _ in job["steps"]:
        run_to_end(rt, job)
    (rt.workspace.root / "job5" / "result.txt").unlink()

    stages.recover(rt, job)

    assert rt.central.job["state"] == "FAILED"
    assert rt.central.job["error"] == "results not produced: result (result.txt)"


def test_recover_refuses_a_job_with_steps_left(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    with pytest.raises(MirrorError, match="steps not done yet: prepare, compute, finish"):
        stages.recover(rt, job)


def test_a_restarted_agent_learns_a_step_end_from_the_ledger(machine):
    job, served = make_job()
    first = machine(job, served)
    prepared(first, job)
    running = launch_step(first, job)
    assert processes.wait_exit(running.pid, timeout=30)[0]
    # The agent died before it saw the end: central still says RUNNING.
    again = machine(first.central.job, served)
    record = stages.fetch(again, 5)

    found = reattach(again, record)
    finish_step(again, record, found, None)

    assert (found.pid, found.token) == (None, running.token)
    assert again.central.job["state"] == "READY"
    assert again.central.job["steps"][0]["exit_code"] == 0


def test_a_restarted_agent_finds_a_live_step_and_can_kill_it(machine):
    job, served = make_job(TRIVIAL.replace(STEPS, STEPS.replace('"true"', '"sleep 30"')))
    first = machine(job, served)
    prepared(first, job)
    running = launch_step(first, job)
    first.running.clear()
    again = machine(first.central.job, served)
    record = stages.fetch(again, 5)

    found = reattach(again, record)
    assert (found.pid, found.token) == (running.pid, running.token)
    stages.kill(again, record)

    assert again.central.job["state"] == "KILLED"
    assert not processes.alive(running.pid, running.started)
    processes.wait_exit(running.pid, timeout=5)  # reap our own child


def test_a_step_whose_job_was_taken_away_is_stopped(machine):
    job, served = make_job(TRIVIAL.replace(STEPS, STEPS.replace('"true"', '"sleep 30"')))
    rt = machine(job, served)
    prepared(rt, job)
    running = launch_step(rt, job)
    assert not taken_away(rt, job, running)
    assert processes.alive(running.pid, running.started)

    rt.central.job.update(state="FAILED", rid=None)
    assert taken_away(rt, job, running)
    assert running.killed
    wait_for(lambda: not processes.alive(running.pid, running.started), 10, what="step stopped")


TWO_RESULTS = TRIVIAL.replace(
    '<Data key="result" path="result.txt"/>',
    '<Data key="result" path="result.txt"/><Data key="extra" path="extra.txt"/>',
)


def test_recover_publishes_the_results_produced_and_names_the_missing(machine):
    job, served = make_job(TWO_RESULTS)
    rt = machine(job, served)
    prepared(rt, job)
    for _ in job["steps"]:
        run_to_end(rt, job)

    stages.recover(rt, job)

    record = rt.central.job
    assert record["state"] == "FAILED"
    assert record["error"] == "results not produced: extra (extra.txt); published: result"
    assert record["result"] == {"result": "ftp://files/jobs/5/result/result/result.txt"}
    assert rt.files.uploaded["/jobs/5/result/result/result.txt"] == b"x = 2\n"


def test_a_step_that_fails_before_it_starts_becomes_the_jobs_step(machine):
    job, served = make_job(TRIVIAL.replace('value="cp work.txt result.txt"', 'value="cp {nxx} r"'))
    rt = machine(job, served)
    prepared(rt, job)
    run_to_end(rt, job)
    run_to_end(rt, job)
    assert rt.central.job["step"] == "compute"

    with pytest.raises(MirrorError, match="step finish of job 5 failed"):
        launch_step(rt, job)

    record = rt.central.job
    assert record["state"] == "FAILED" and record["error"].startswith("step finish: ")
    assert record["step"] == "finish"
    assert [s["state"] for s in record["steps"]] == ["DONE", "DONE", "FAILED"]
