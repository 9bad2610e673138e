"""Sweeps against a real mesh: two autorun agents, on SQLite and on PostgreSQL."""

import pytest

from services.client import Mirror, MirrorError
from tests.integration.sweeps import dispatch, para, shell_package, wait_all
from tests.mesh import Mesh, wait_for


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mesh(request, tmp_path_factory, amqp_uri):
    """Central services and autorun agents 1 and 2, two slots each."""
    db_url = request.getfixturevalue("pg_module_url") if request.param == "postgres" else None
    mesh = Mesh(tmp_path_factory.mktemp(f"sweeps-{request.param}"), amqp_uri, db_url)
    try:
        mesh.start_core()
        for rid in (1, 2):
            mesh.start_agent(rid, autorun=True, slots=2, wait=False)
        for rid in (1, 2):
            mesh.wait_online(rid)
        mesh.shared = mesh.tmp / "shared"
        mesh.shared.mkdir()
        yield mesh
    finally:
        mesh.close()


def refused(mesh, method, **kwargs):
    code, message = mesh.rpc("sweep", method, **kwargs)
    assert code == -1, message
    return message


def test_a_dispatch_is_one_sweep_with_counts_steps_and_estimate(mesh):
    sweep_id, ids = dispatch(mesh, "plain", "true", x=range(6))
    assert len(ids) == 6
    jobs = wait_all(mesh, ids)
    assert {j["sweep_id"] for j in jobs} == {sweep_id}
    summaries = mesh.ok("job", "list", limit=6)
    assert {s["sweep_id"] for s in summaries} == {sweep_id}
    listed = mesh.ok("sweep", "list")
    assert listed[0]["sweep_id"] == sweep_id and listed[0]["total"] == 6
    sweep = mesh.ok("sweep", "query", sweep_id=sweep_id)
    assert sweep["states"]["COMPLETED"] == 6 and sweep["done"] == sweep["total"] == 6
    assert sweep["steps"] == {"s": {"COMPLETED": 6}}
    assert sweep["first_submit"] and sweep["last_end"] >= sweep["first_submit"]
    assert sweep["estimate"]["mean_seconds"] is not None
    assert sweep["estimate"]["remaining_seconds"] == 0
    assert sweep["failures"] == {"by_error": [], "by_parameter": {}}
    p_id = mesh.ok("job", "query", job_id=ids[0])["p_id"]
    assert [s["sweep_id"] for s in mesh.ok("sweep", "list", p_id=p_id)] == [sweep_id]


def test_failures_grouped_by_parameter_jobs_filtered_and_retried(mesh):
    command = "test {alpha} != 8 || exit 3"
    sweep_id, ids = dispatch(mesh, "alpha8", command, x=range(6), alpha=[2, 8] * 3)
    jobs = wait_all(mesh, ids)
    assert [j["state"] for j in jobs] == ["COMPLETED", "FAILED"] * 3
    failures = mesh.ok("sweep", "query", sweep_id=sweep_id)["failures"]
    assert [f["count"] for f in failures["by_error"]] == [3]
    by_alpha = {
        r["value"]: (r["jobs"], r["failed"], r["rate"]) for r in failures["by_parameter"]["alpha"]
    }
    assert by_alpha == {"8": (3, 3, 1.0), "2": (3, 0, 0.0)}
    assert {r["rate"] for r in failures["by_parameter"]["x"]} == {0.0, 1.0}

    failed = mesh.ok("sweep", "jobs", sweep_id=sweep_id, state="FAILED")
    assert [j["job_id"] for j in failed] == ids[1::2]
    some = mesh.ok("sweep", "jobs", sweep_id=sweep_id, where="alpha == 8 and x > 1")
    assert [j["job_id"] for j in some] == ids[3::2]
    assert some[0]["params"]["alpha"] == "8"
    page = mesh.ok("sweep", "jobs", sweep_id=sweep_id, limit=2, after=ids[1])
    assert [j["job_id"] for j in page] == ids[2:4]

    # A new attempt of the same job id: it fails again, and both attempts stay.
    assert mesh.ok("sweep", "retry", sweep_id=sweep_id, where="x == 1") == [ids[1]]
    wait_for(
        lambda: (
            mesh.ok("job", "query", job_id=ids[1])["attempts"] == 2
            and mesh.ok("job", "query", job_id=ids[1])["state"] == "FAILED"
        ),
        60,
        what="the second attempt to fail",
    )
    attempts = {e["attempt"] for e in mesh.ok("job", "events", job_id=ids[1])}
    assert {1, 2} <= attempts
    message = refused(mesh, "retry", sweep_id=sweep_id, states=["COMPLETED"], where="x == 99")
    assert message == f"sweep {sweep_id} has no COMPLETED job matching 'x == 99' to retry"


def test_bad_inputs(mesh):
    sweep_id, ids = dispatch(mesh, "bad", "true", x=range(2))
    wait_all(mesh, ids)
    missing = "sweep is not existed , sweep : 999999"
    for method, kwargs in (
        ("query", {}),
        ("jobs", {}),
        ("kill", {}),
        ("retry", {}),
        ("delete", {}),
        ("throttle", {"max_running": 1}),
    ):
        assert refused(mesh, method, sweep_id=999999, **kwargs) == missing
    message = refused(mesh, "jobs", sweep_id=sweep_id, where="x >= 1 and")
    assert (
        message
        == "where: expected a parameter name, a number or a string, found the end at position 11 of 'x >= 1 and'"
    )
    assert "at position 3" in refused(mesh, "kill", sweep_id=sweep_id, where="x = 1")
    assert refused(mesh, "throttle", sweep_id=sweep_id, max_running=-1) == (
        "max_running must be 0 (no limit) or more, not -1"
    )
    assert refused(mesh, "retry", sweep_id=sweep_id) == (
        f"sweep {sweep_id} has no FAILED or KILLED job to retry"
    )
    assert "cannot retry QUEUED jobs" in refused(
        mesh, "retry", sweep_id=sweep_id, states=["QUEUED"]
    )
    assert "unknown job state 'NOPE'" in refused(mesh, "jobs", sweep_id=sweep_id, state="NOPE")
    assert "limit must be between 1 and" in refused(mesh, "jobs", sweep_id=sweep_id, limit=0)


def max_overlap(jobs):
    """The most jobs whose [start, end] intervals overlap at one moment."""
    edges = sorted(
        [(j["start_time"], 1) for j in jobs] + [(j["end_time"], -1) for j in jobs],
        key=lambda e: (e[0], e[1]),
    )
    now = best = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def test_the_throttle_holds_across_two_machines(mesh):
    gate = mesh.shared / "gate"
    # Four blockers fill the four slots, so the throttled sweep waits queued.
    _, blockers = dispatch(
        mesh, "blocker", f"while ! test -e {gate}; do sleep 0.1; done", x=range(4)
    )
    wait_for(
        lambda: all(mesh.ok("job", "query", job_id=j)["state"] == "RUNNING" for j in blockers),
        60,
        what="the blockers to run",
    )
    sweep_id, ids = dispatch(mesh, "throttled", "sleep 0.6", x=range(8))
    assert mesh.ok("sweep", "throttle", sweep_id=sweep_id, max_running=2) == {
        "sweep_id": sweep_id,
        "max_running": 2,
    }
    assert mesh.ok("sweep", "query", sweep_id=sweep_id)["max_running"] == 2
    gate.touch()
    jobs = wait_all(mesh, ids + blockers, timeout=180)
    assert {j["state"] for j in jobs} == {"COMPLETED"}
    mine = [j for j in jobs if j["sweep_id"] == sweep_id]
    assert max_overlap(mine) <= 2
    assert {j["rid"] for j in mine} == {1, 2}
    # Lifted: a new sweep of the same size runs four at once again.
    assert mesh.ok("sweep", "throttle", sweep_id=sweep_id, max_running=0)["max_running"] == 0


def test_kill_part_of_a_sweep_then_delete_it(mesh):
    sweep_id, ids = dispatch(mesh, "sleepy", "sleep 60", x=range(4))
    wait_for(
        lambda: mesh.ok("sweep", "query", sweep_id=sweep_id)["running"] == 4,
        60,
        what="four jobs claimed",
    )
    assert sorted(mesh.ok("sweep", "kill", sweep_id=sweep_id, where="x in (0, 1)")) == ids[:2]
    for job_id in ids[:2]:
        mesh.wait_state(job_id, "KILLED")
    others = {mesh.ok("job", "query", job_id=j)["state"] for j in ids[2:]}
    assert others <= {"PREPARING", "READY", "RUNNING"}
    message = refused(mesh, "delete", sweep_id=sweep_id)
    assert message == (
        f"sweep {sweep_id} has 2 job(s) under way; kill them first or delete with force=1"
    )
    assert mesh.ok("sweep", "kill", sweep_id=sweep_id) == ids[2:]
    for job_id in ids[2:]:
        mesh.wait_state(job_id, "KILLED")
    assert mesh.ok("sweep", "delete", sweep_id=sweep_id) == {"deleted": 4}
    assert refused(mesh, "query", sweep_id=sweep_id) == f"sweep is not existed , sweep : {sweep_id}"
    code, message = mesh.rpc("job", "query", job_id=ids[0])
    assert (code, message) == (-1, f"job is not existed , job : {ids[0]}")


def test_delete_with_force_kills_first(mesh):
    sweep_id, ids = dispatch(mesh, "forced", "sleep 60", x=range(2))
    wait_for(
        lambda: mesh.ok("sweep", "query", sweep_id=sweep_id)["running"] == 2,
        60,
        what="two jobs claimed",
    )
    assert mesh.ok("sweep", "delete", sweep_id=sweep_id, force=1) == {"deleted": 2}
    assert refused(mesh, "query", sweep_id=sweep_id) == f"sweep is not existed , sweep : {sweep_id}"


def test_automatic_retries_after_a_failed_first_attempt(mesh):
    marks = mesh.shared / "marks"
    marks.mkdir()
    # The first attempt of each job fails with 137 (as if killed for memory).
    command = f"if test -e {marks}/{{x}}; then true; else touch {marks}/{{x}}; exit 137; fi"
    sweep_id, ids = dispatch(mesh, "flaky", command, x=range(3), MAX_RETRIES=2, RETRY_ON="137;143")
    jobs = wait_all(mesh, ids)
    assert [j["state"] for j in jobs] == ["COMPLETED"] * 3
    assert [(j["attempts"], j["retries"]) for j in jobs] == [(2, 1)] * 3
    messages = [e["message"] for e in mesh.ok("job", "events", job_id=ids[0])]
    retry = "retry 1 of 2 after exit code 137 on resource machine "
    assert any(m.startswith(retry) for m in messages)
    assert any("FAILED" in m or "exit code 137" in m for m in messages)


def test_no_retry_for_another_exit_code_or_a_user_kill(mesh):
    sweep_id, ids = dispatch(mesh, "exit3", "exit 3", x=range(1), MAX_RETRIES=2, RETRY_ON="137")
    (job,) = wait_all(mesh, ids)
    assert (job["state"], job["attempts"], job["retries"]) == ("FAILED", 1, 0)

    _, (job_id,) = dispatch(mesh, "killme", "sleep 60", x=range(1), MAX_RETRIES=3, RETRY_ON="any")
    mesh.wait_state(job_id, "RUNNING")
    assert mesh.ok("job", "cancel", job_id=job_id) == []
    job = mesh.wait_state(job_id, "KILLED")
    assert (job["attempts"], job["retries"]) == (1, 0)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"MAX_RETRIES": "two"}, "MAX_RETRIES must be a whole number of 0 or more, not 'two'"),
        ({"RETRY_ON": "oom"}, "RETRY_ON must be 'any' or exit codes separated by ';'"),
    ],
)
def test_bad_retry_policies_are_refused_at_dispatch(mesh, params, problem):
    c_id = shell_package(mesh, "policy", "true")
    p_id = mesh.add_project("policy", {"para.xml": para(x=range(1), **params)})
    code, message = mesh.rpc("jobdispatch", "do", p_id=p_id, c_id=c_id)
    assert code == -1 and problem in message


def test_the_python_client(mesh):
    sweep_id, ids = dispatch(mesh, "client", "test {x} != 2 || exit 4", x=range(5))
    with Mirror(mesh.config["AMQP_URI"], mesh.exchange, timeout=20) as client:
        assert client.sweep_of(ids[0]) == sweep_id
        done = client.wait_sweep(sweep_id, interval=0.2, timeout=60)
        assert (done["done"], done["states"]["FAILED"]) == (5, 1)
        assert sweep_id in [s["sweep_id"] for s in client.sweeps()]
        assert [j["job_id"] for j in client.iter_sweep_jobs(sweep_id, page=2)] == ids
        assert [j["job_id"] for j in client.sweep_jobs(sweep_id, state=["FAILED"])] == [ids[2]]
        assert [j["job_id"] for j in client.iter_sweep_jobs(sweep_id, where="x >= 3")] == ids[3:]
        assert client.sweep_retry(sweep_id, where="x == 2") == [ids[2]]
        assert client.sweep_throttle(sweep_id, 3)["max_running"] == 3
        with pytest.raises(MirrorError, match="where: expected"):
            client.sweep_kill(sweep_id, where="x in 1")
        client.wait_sweep(sweep_id, interval=0.2, timeout=60)
        assert client.sweep_delete(sweep_id) == {"deleted": 5}


def test_script_submissions_make_a_sweep_or_join_one(mesh):
    first = mesh.ok("jobdispatch", "submit", script="true", name="batch-1")
    sweep_id = mesh.ok("job", "query", job_id=first)["sweep_id"]
    second = mesh.ok("jobdispatch", "submit", script="true", name="batch-2", sweep_id=sweep_id)
    alone = mesh.ok("jobdispatch", "submit", script="true", name="alone")
    assert mesh.ok("job", "query", job_id=second)["sweep_id"] == sweep_id
    assert mesh.ok("job", "query", job_id=alone)["sweep_id"] not in (None, sweep_id)
    wait_all(mesh, [first, second, alone])
    sweep = mesh.ok("sweep", "query", sweep_id=sweep_id)
    assert (sweep["kind"], sweep["total"], sweep["states"]["COMPLETED"]) == ("submit", 2, 2)

    dispatched, _ = dispatch(mesh, "notbatch", "true", x=range(1))
    code, message = mesh.rpc("jobdispatch", "submit", script="true", sweep_id=dispatched)
    assert (code, message) == (-1, f"sweep {dispatched} is a dispatch sweep, not a submit one")
    code, message = mesh.rpc("jobdispatch", "submit", script="true", sweep_id=999999)
    assert (code, message) == (-1, "sweep is not existed , sweep : 999999")
