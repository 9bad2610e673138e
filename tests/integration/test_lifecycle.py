"""The job life cycle of seed 003, driven by hand over RPC and over HTTP, against real processes."""

import json
from pathlib import Path

import sqlalchemy as sa

from adapters.bundled import project_files
from tests.integration.manual_jobs import dispatch_demo, ftp_download, wait_step


def check_results_match_files(mesh, job_id):
    """Every URL of jobgetdata downloads exactly the bytes the steps wrote."""
    job = mesh.ok("job", "query", job_id=job_id)
    data = mesh.ok("jobgetdata", "do", job_id=job_id)
    root = Path(job["path"])
    expected = {"mesh": "GRID/mesh.dat", "force": "POST/force.dat"}
    assert set(data["result"]) == set(expected)
    for key, rel in expected.items():
        url = data["result"][key]
        assert url.startswith(f"ftp://job{job_id}:") and "@127.0.0.1:" in url, url
        assert ftp_download(url) == (root / rel).read_bytes()
    assert ftp_download(data["process"]["chart"]) == (root / "FLOW/residual.dat").read_bytes()
    assert data["process"]["currentstep"] == data["process"]["allstep"]


# -- the seed's manual sequence ---------------------------------------------------------
def test_manual_sequence_over_rpc(manual):
    p_id, ids = dispatch_demo(manual)
    assert len(ids) == 3
    assert [j["state"] for j in manual.ok("project", "getalljob", p_id=p_id)] == ["QUEUED"] * 3
    for job_id in ids:
        rid = manual.ok("job", "getrid", job_id=job_id)
        assert rid == 1
        assert manual.rpc(f"jobdirbuild_{rid}", "do", job_id=job_id, force=0) == [0, []]
        assert manual.rpc(f"jobfilebuild_{rid}", "do", job_id=job_id) == [0, []]
        for step in ("grid", "flow", "post"):
            assert manual.rpc(f"jobrun_{rid}", "do", job_id=job_id) == [0, []]
            if step == "flow":
                # While the solver iterates, monitoring publishes its progress.
                manual.wait_state(job_id, "RUNNING")
                assert manual.rpc(f"jobprocessmonitor_{rid}", "do", job_id=job_id) == [0, []]
            wait_step(manual, job_id, step)
        assert manual.rpc(f"jobprocessmonitor_{rid}", "do", job_id=job_id) == [0, []]
        assert manual.ok("jobgetdata", "do", job_id=job_id)["result"] == {}
        assert manual.rpc(f"jobresultrecovery_{rid}", "do", job_id=job_id) == [0, []]
        job = manual.ok("job", "query", job_id=job_id)
        assert job["state"] == "COMPLETED" and job["error"] is None
        assert [(s["id"], s["state"], s["exit_code"]) for s in job["steps"]] == [
            ("grid", "DONE", 0),
            ("flow", "DONE", 0),
            ("post", "DONE", 0),
        ]
        for key in (
            "job_id",
            "p_id",
            "c_id",
            "rid",
            "state",
            "step",
            "steps",
            "params",
            "state_name",
            "path",
            "error",
            "submit_time",
            "start_time",
            "end_time",
        ):
            assert key in job
        assert job["params"]["NCPUS"] == 1
        check_results_match_files(manual, job_id)
        # Repeating recovery is harmless.
        assert manual.rpc(f"jobresultrecovery_{rid}", "do", job_id=job_id) == [0, []]
    names = [manual.ok("job", "query", job_id=j)["state_name"] for j in ids]
    assert names == ["mach=0.5,alpha=0", "mach=0.6,alpha=2", "mach=0.7,alpha=4"]
    events = manual.ok("job", "events", job_id=ids[0])
    states = [e["state"] for e in events]
    assert states[0] == "QUEUED" and states[-1] == "COMPLETED" and "RUNNING" in states


def test_manual_sequence_over_http(manual):
    p_id = manual.add_project("http", project_files("demo"))
    status, body = manual.http(
        "/proxy/jobdispatch-do",
        {"p_id": p_id, "c_id": manual.demo_c_id, "para_name": "para.xml", "rid": 1},
    )
    assert status == 200 and body[0] == 0
    for job_id in body[1]:
        assert manual.http("/proxy/job-getrid", {"job_id": job_id}) == (200, [0, 1])
        assert manual.http("/proxy/jobdirbuild_1-do", {"job_id": job_id, "force": 0}) == (
            200,
            [0, []],
        )
        assert manual.http("/proxy/jobfilebuild_1-do", {"job_id": job_id}) == (200, [0, []])
        for step in ("grid", "flow", "post"):
            assert manual.http("/proxy/jobrun_1-do", {"job_id": job_id, "step": step}) == (
                200,
                [0, []],
            )
            wait_step(manual, job_id, step)
        assert manual.http("/proxy/jobprocessmonitor_1-do", {"job_id": job_id}) == (200, [0, []])
        assert manual.http("/proxy/jobresultrecovery_1-do", {"job_id": job_id}) == (200, [0, []])
        status, body = manual.http("/proxy/jobgetdata-do", {"job_id": job_id})
        assert status == 200 and body[0] == 0 and set(body[1]) == {"process", "result"}
        check_results_match_files(manual, job_id)


# -- directory and files ------------------------------------------------------------------
def test_force_dirbuild_makes_a_new_directory_and_keeps_the_old(manual):
    _, (job_id, *_) = dispatch_demo(manual)
    manual.ok("jobdirbuild_1", "do", job_id=job_id)
    first = Path(manual.ok("job", "query", job_id=job_id)["path"])
    assert (first / ".mirror/calc/adapter.xml").is_file()
    assert (first / ".mirror/proj/para.xml").is_file() and (first / "FLOW/flow.py").is_file()
    # Without force a second build is a no-op.
    manual.ok("jobdirbuild_1", "do", job_id=job_id, force=0)
    assert Path(manual.ok("job", "query", job_id=job_id)["path"]) == first
    (first / "marker").write_text("old")
    manual.ok("jobdirbuild_1", "do", job_id=job_id, force="1")
    second = Path(manual.ok("job", "query", job_id=job_id)["path"])
    assert second != first and second.is_dir() and (first / "marker").read_text() == "old"
    assert not (second / "marker").exists()


def update_params(mesh, job_id, **changes):
    """Change a job's stored parameters in the database, as the seed lets users do."""
    engine = sa.create_engine(f"sqlite:///{mesh.tmp / 'data' / 'mirror.db'}")
    with engine.begin() as conn:
        params = json.loads(
            conn.execute(sa.text("SELECT params FROM jobs WHERE id=:i"), {"i": job_id}).scalar()
        )
        params.update(changes)
        conn.execute(
            sa.text("UPDATE jobs SET params=:p WHERE id=:i"), {"p": json.dumps(params), "i": job_id}
        )
    engine.dispose()


def test_file_generation_rereads_the_stored_parameters(manual):
    _, (job_id, *_) = dispatch_demo(manual)
    manual.ok("jobdirbuild_1", "do", job_id=job_id)
    manual.ok("jobfilebuild_1", "do", job_id=job_id)
    root = Path(manual.ok("job", "query", job_id=job_id)["path"])
    assert "0.5" in (root / "FLOW/flow.in").read_text()
    assert (root / "GRID/wing.dat").read_bytes() == project_files("demo")["wing.dat"]
    update_params(manual, job_id, mach=0.93)
    manual.ok("jobfilebuild_1", "do", job_id=job_id)
    text = (root / "FLOW/flow.in").read_text()
    assert "0.93" in text and "0.5" not in text


def test_calls_for_another_machine_or_unknown_job(manual):
    p_id = manual.add_project("other", project_files("demo"))
    manual.ok("machine", "heartbeat", rid=2, name="m2", slots=4)  # known, no agent
    (job_id, *_) = manual.ok("jobdispatch", "do", p_id=p_id, c_id=manual.demo_c_id, rid=2)
    for service in ("jobdirbuild_1", "jobfilebuild_1", "jobrun_1", "jobkill_1", "jobdelete_1"):
        assert manual.rpc(service, "do", job_id=job_id) == [
            -1,
            f"job {job_id} belongs to resource machine 2, not 1",
        ]
    assert manual.rpc("jobrun_1", "do", job_id=987654) == [-1, "job is not existed , job : 987654"]


def test_bad_arguments_through_http(manual):
    status, body = manual.http("/proxy/jobdirbuild_1-do", {"job_id": "abc"})
    assert (status, body) == (200, [-1, "job_id must be an integer, got 'abc'"])
    status, body = manual.http("/proxy/jobrun_1-do", {"job_id": 1, "colour": "red"})
    assert status == 400 and body[0] == -1
    status, body = manual.http("/proxy/jobrun_9-do", {"job_id": 1})
    assert status == 404 and body[0] == -1
    _, (job_id, *_) = dispatch_demo(manual)
    manual.ok("jobdirbuild_1", "do", job_id=job_id)
    manual.ok("jobfilebuild_1", "do", job_id=job_id)
    status, body = manual.http("/proxy/jobrun_1-do", {"job_id": job_id, "step": "nosuch"})
    assert (status, body) == (
        200,
        [-1, f"job {job_id} has no step 'nosuch'; steps: grid, flow, post"],
    )


def test_run_before_files_says_what_to_do(manual):
    _, (job_id, *_) = dispatch_demo(manual)
    code, message = manual.rpc("jobrun_1", "do", job_id=job_id)
    assert code == -1 and "jobfilebuild_1.do" in message
    code, message = manual.rpc("jobfilebuild_1", "do", job_id=job_id)
    assert code == -1 and "jobdirbuild_1.do" in message
