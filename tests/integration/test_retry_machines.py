"""Automatic retries across a failing machine, and sweep kills, on a real mesh with two agents.

Machine 1 is the failing one: its work root holds a file ``BROKEN``, and the
steps of these tests exit with an error code when their job directory's
parent (the machine's work root) holds it. Machine 2's work root does not.
"""

from pathlib import Path

import pytest

from services.common.jobstates import FINAL
from tests.integration.sweeps import dispatch, wait_all
from tests.mesh import Mesh, wait_for


def failing_on_machine_1(code, then="true"):
    """A step that exits ``code`` on machine 1 and runs ``then`` elsewhere."""
    return f'if test -e "$MIRROR_JOB_DIR/../BROKEN"; then exit {code}; fi; {then}'


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mesh(request, tmp_path_factory, amqp_uri):
    """Central and autorun agents 1 (four slots, failing) and 2 (two slots)."""
    db_url = request.getfixturevalue("pg_module_url") if request.param == "postgres" else None
    tmp = tmp_path_factory.mktemp(f"retry-machines-{request.param}")
    # A retry placed back on a machine that still held its id goes out again soon.
    mesh = Mesh(tmp, amqp_uri, db_url, RECONCILER={"republish_after": 5})
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, slots=4, wait=False)
        mesh.start_agent(2, autorun=True, slots=2, wait=False)
        for rid in (1, 2):
            mesh.wait_online(rid)
        mesh.work = {rid: Path(mesh.config["DATA_DIR"]) / "work" / f"rid{rid}" for rid in (1, 2)}
        mesh.work[1].mkdir(parents=True, exist_ok=True)
        (mesh.work[1] / "BROKEN").touch()
        mesh.shared = tmp / "shared"
        mesh.shared.mkdir()
        yield mesh
    finally:
        mesh.close()


def events_of(mesh, job_id):
    return mesh.ok("job", "events", job_id=job_id)


def test_a_retry_leaves_the_failing_machine_and_completes(mesh):
    command = failing_on_machine_1(137)
    _, (job_id,) = dispatch(mesh, "flaky", command, x=[0], MAX_RETRIES=2, RETRY_ON="137;143")
    job = mesh.wait_state(job_id, FINAL, timeout=120)
    assert (job["state"], job["attempts"], job["retries"]) == ("COMPLETED", 2, 1)
    assert job["rid"] == 2
    events = events_of(mesh, job_id)
    # Attempt 1 ran on machine 1 and failed with 137; the retry names both machines.
    first = [(e["state"], e["message"]) for e in events if e["attempt"] == 1]
    assert first[0] == ("PREPARING", "claimed")
    assert "step s FAILED (exit code 137)" in [m for _, m in first]
    assert first[-1][0] == "FAILED"
    retries = [e for e in events if e["message"].startswith("retry ")]
    assert [(e["state"], e["attempt"], e["message"]) for e in retries] == [
        (
            "QUEUED",
            None,
            "retry 1 of 2 after exit code 137 on resource machine 1; placed on resource machine 2",
        )
    ]
    second = [(e["state"], e["message"]) for e in events if e["attempt"] == 2]
    assert second[0] == ("PREPARING", "claimed")
    assert second[-1][0] == "COMPLETED"
    # The history is in order: attempt 1, the retry, attempt 2.
    at = [e["attempt"] for e in events]
    retry_at = events.index(retries[0])
    assert max(i for i, a in enumerate(at) if a == 1) < retry_at < at.index(2)
    # Each attempt built its directory on its own machine.
    assert (mesh.work[1] / f"job{job_id}").is_dir()
    assert (mesh.work[2] / f"job{job_id}").is_dir()


def test_a_retry_runs_again_on_the_failing_machine_when_the_other_is_full(mesh):
    gate = mesh.shared / "gate-full"
    wait = f"while ! test -e {gate}; do sleep 0.1; done"
    _, blockers = dispatch(mesh, "fill2", wait, rid=2, x=range(2))
    wait_for(
        lambda: all(mesh.ok("job", "query", job_id=j)["state"] == "RUNNING" for j in blockers),
        60,
        what="machine 2 full",
    )
    try:
        command = failing_on_machine_1(137)
        _, (job_id,) = dispatch(mesh, "stuck", command, x=[0], MAX_RETRIES=1, RETRY_ON="137")
        job = mesh.wait_state(job_id, FINAL, timeout=120)
        # Machine 2 had no room: the retry ran on machine 1 again rather than wait.
        assert (job["state"], job["attempts"], job["retries"], job["rid"]) == ("FAILED", 2, 1, 1)
        messages = [e["message"] for e in events_of(mesh, job_id)]
        assert "retry 1 of 1 after exit code 137 on resource machine 1" in messages
        assert messages.count("step s FAILED (exit code 137)") == 2
        assert {mesh.ok("job", "query", job_id=j)["state"] for j in blockers} == {"RUNNING"}
    finally:
        gate.touch()
    assert {j["state"] for j in wait_all(mesh, blockers)} == {"COMPLETED"}


def test_an_exit_code_not_in_retry_on_is_not_retried(mesh):
    command = failing_on_machine_1(3)
    _, (job_id,) = dispatch(mesh, "exit3", command, x=[0], MAX_RETRIES=2, RETRY_ON="137")
    # A retry would queue the job in the transaction that records the failure:
    # once FAILED is read, no retry can follow.
    job = mesh.wait_state(job_id, FINAL, timeout=120)
    assert (job["state"], job["attempts"], job["retries"], job["rid"]) == ("FAILED", 1, 0, 1)
    messages = [e["message"] for e in events_of(mesh, job_id)]
    assert "step s FAILED (exit code 3)" in messages
    assert not [m for m in messages if m.startswith("retry ")]


def test_user_kills_are_never_retried_and_a_sweep_kill_calls_each_machine_once(mesh):
    # SIGTERM ends the steps with 143, a code RETRY_ON names: a kill still never retries.
    sweep_id, ids = dispatch(
        mesh, "killed", "sleep 60", x=range(6), MAX_RETRIES=3, RETRY_ON="137;143"
    )
    wait_for(
        lambda: mesh.ok("sweep", "query", sweep_id=sweep_id)["states"]["RUNNING"] == 6,
        60,
        what="six jobs running",
    )
    placed = {j: mesh.ok("job", "query", job_id=j)["rid"] for j in ids}
    assert sorted(placed.values()) == [1, 1, 1, 1, 2, 2]
    cancelled = ids[0]
    assert mesh.ok("job", "cancel", job_id=cancelled) == []
    mesh.wait_state(cancelled, "KILLED")
    seen = {rid: len(mesh.log(f"agent{rid}")) for rid in (1, 2)}
    assert mesh.ok("sweep", "kill", sweep_id=sweep_id) == ids[1:]
    jobs = wait_all(mesh, ids)
    assert [(j["state"], j["attempts"], j["retries"]) for j in jobs] == [("KILLED", 1, 0)] * 6
    for job in jobs:
        messages = [e["message"] for e in events_of(mesh, job["job_id"])]
        assert not [m for m in messages if m.startswith("retry ")]
    # One jobkill call per machine for the five jobs the sweep kill stopped.
    for rid in (1, 2):
        calls = [
            line
            for line in mesh.log(f"agent{rid}")[seen[rid] :].splitlines()
            if f"Machine<{rid}> jobkill:" in line
        ]
        count = sum(1 for j in ids[1:] if placed[j] == rid)
        assert len(calls) == 1, calls
        assert f"jobkill: {count} job(s) stopped in one call, 0 refused" in calls[0]
