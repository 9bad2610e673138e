"""Pids: no signal and no reattach without a matching start time and run token (real processes)."""

import os
import subprocess

import pytest
from agent_support import STEPS, TRIVIAL, make_job, prepared

from services.agent import processes, stages
from services.agent.steprun import launch_step, reattach

SLEEPY = TRIVIAL.replace(STEPS, STEPS.replace('"true"', '"sleep 30"'))


@pytest.fixture
def bystander():
    """A live process that is no step of any job (it carries no run token)."""
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_a_pid_without_a_start_time_counts_as_gone(bystander):
    started = processes.create_time(bystander.pid)
    assert processes.alive(bystander.pid, started)
    assert not processes.alive(bystander.pid, None)
    assert not processes.alive(bystander.pid, started + 10)


def test_no_signal_without_a_start_time_or_a_run_token(bystander):
    started = processes.create_time(bystander.pid)
    assert processes.kill_tree(bystander.pid, None, "some-token", 0.2) == 0
    # A forged record: the right pid and start time, but the process carries no token.
    assert processes.kill_tree(bystander.pid, started, "some-token", 0.2) == 0
    assert processes.kill_tree(bystander.pid, started, None, 0.2) == 0
    assert bystander.poll() is None


def test_child_start_is_known_only_for_our_unreaped_child(bystander):
    assert processes.child_start(bystander.pid) == processes.create_time(bystander.pid)
    assert processes.child_start(1) is None
    bystander.kill()
    bystander.wait()
    assert processes.child_start(bystander.pid) is None


def test_a_forged_record_does_not_make_kill_signal_another_process(machine, bystander):
    job, served = make_job(SLEEPY)
    rt = machine(job, served)
    prepared(rt, job)
    running = launch_step(rt, job)
    rt.running.clear()
    # The record names the bystander, with its real start time.
    rt.central.job.update(pid=bystander.pid, pid_start=processes.create_time(bystander.pid))

    stages.kill(rt, stages.fetch(rt, 5))

    assert rt.central.job["state"] == "KILLED"
    assert bystander.poll() is None
    # The step itself is found by its run token (from the ledger) and stopped.
    assert processes.wait_exit(running.pid, timeout=10)[0]


def test_a_deferred_step_without_a_recorded_start_time_is_still_killed(machine):
    job, served = make_job(SLEEPY)
    rt = machine(job, served)
    # Started by the agent itself (no step keeper): its start time is read only when needed.
    rt.keeper = None
    prepared(rt, job, defer=True)
    running = launch_step(rt, job, defer_report=True)
    assert running.started is None

    stages.kill(rt, job)

    assert running.started is not None
    assert processes.wait_exit(running.pid, timeout=10)[0]
    assert rt.central.job["state"] == "KILLED"


def test_a_step_the_keeper_started_has_its_start_time_and_is_killed(machine):
    job, served = make_job(SLEEPY)
    rt = machine(job, served)
    prepared(rt, job, defer=True)
    running = launch_step(rt, job, defer_report=True)
    assert running.kept
    assert running.started == pytest.approx(processes.create_time(running.pid))

    stages.kill(rt, job)

    assert processes.wait_exit(running.pid, timeout=10)[0]
    assert rt.central.job["state"] == "KILLED"


def test_reattach_without_a_start_time_finds_the_step_by_its_environment(machine):
    job, served = make_job(SLEEPY)
    first = machine(job, served)
    prepared(first, job)
    running = launch_step(first, job)
    first.running.clear()
    first.central.job["pid_start"] = None
    again = machine(first.central.job, served)

    found = reattach(again, stages.fetch(again, 5))

    assert (found.pid, found.token) == (running.pid, running.token)
    assert found.started == pytest.approx(running.started)
    stages.kill(again, stages.fetch(again, 5))
    assert processes.wait_exit(running.pid, timeout=10)[0]


def test_reattach_treats_a_record_without_start_time_and_no_such_step_as_vanished(
    machine, bystander
):
    job, served = make_job()
    first = machine(job, served)
    prepared(first, job)
    running = launch_step(first, job)
    assert processes.wait_exit(running.pid, timeout=10)[0]
    first.running.clear()
    first.central.job.update(pid=bystander.pid, pid_start=None)
    again = machine(first.central.job, served)

    found = reattach(again, stages.fetch(again, 5))

    assert found.pid is None
    assert bystander.poll() is None


def test_strays_are_the_step_processes_working_under_a_root(tmp_path):
    inside, outside = tmp_path / "work" / "job77", tmp_path / "elsewhere" / "job78"
    procs = [
        subprocess.Popen(
            ["sleep", "30"],
            env={"PATH": os.environ["PATH"], "MIRROR_JOB_ID": job_id, "MIRROR_JOB_DIR": str(d)},
        )
        for job_id, d in (("77", inside), ("78", outside))
    ]
    try:
        found = processes.strays(tmp_path / "work")
        assert set(found) == {77}
        assert found[77][0] == procs[0].pid
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
