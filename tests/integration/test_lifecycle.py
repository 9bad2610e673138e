"""The job life cycle of seed 003, driven by hand over RPC and over HTTP, against real processes."""

import ftplib
import io
import json
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa

from adapters.bundled import project_files
from tests.integration.conftest import make_package
from tests.mesh import job_processes, wait_for


def ftp_download(url):
    """Download an ``ftp://user:pass@host:port/path`` URL with the account it names."""
    parts = urlsplit(url)
    ftp = ftplib.FTP()
    ftp.connect(parts.hostname, parts.port, timeout=10)
    ftp.login(parts.username, parts.password)
    buf = io.BytesIO()
    try:
        ftp.retrbinary(f"RETR {unquote(parts.path)}", buf.write)
    finally:
        ftp.quit()
    return buf.getvalue()


def wait_step(mesh, job_id, step, state="DONE", timeout=60):
    def ended():
        job = mesh.ok("job", "query", job_id=job_id)
        current = next(s for s in job["steps"] if s["id"] == step)
        return job if current["state"] == state and job["state"] != "RUNNING" else None

    return wait_for(ended, timeout, what=f"job {job_id} step {step} {state}")


def dispatch_demo(mesh, rid=1, name="demo"):
    p_id = mesh.add_project(name, project_files("demo"))
    return p_id, mesh.ok("jobdispatch", "do", p_id=p_id, c_id=mesh.demo_c_id, rid=rid)


def check_results_match_files(mesh, job_id):
    """Every URL of jobgetdata downloads exactly the bytes the steps wrote."""
    job = mesh.ok("job", "query", job_id=job_id)
    data = mesh.ok("jobgetdata", "do", job_id=job_id)
    root = Path(job["path"])
    expected = {"mesh": "GRID/mesh.dat", "force": "POST/force.dat"}
    assert set(data["result"]) == set(expected)
    for key, rel in expected.items():
        url = data["result"][key]
        assert url.startswith("ftp://mirror:mirror@127.0.0.1:")
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


# -- custom packages: failures, quoting, kill ---------------------------------------------------
PROBE_PARA = """<Para>
  <Param name="NCPUS" type="int">1</Param>
  <Param name="value" type="str">{value}</Param>
</Para>"""


def probe(mesh, name, steps_xml, hooks=None, value="plain", files=None, extra=""):
    """Register a package with the given steps and dispatch one job of it on rid 1."""
    hooks_attr = ' hooks="hooks.py"' if hooks else ""
    adapter = (
        f'<Adapter name="{name}"{hooks_attr}>\n<Steps>\n{steps_xml}\n</Steps>\n{extra}</Adapter>\n'
    )
    package = dict(files or {})
    if hooks:
        package["hooks.py"] = hooks
    c_id = mesh.add_package(name, make_package(adapter, package))
    p_id = mesh.add_project(name, {"para.xml": PROBE_PARA.format(value=escape(value)).encode()})
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=1)
    mesh.ok("jobdirbuild_1", "do", job_id=job_id)
    mesh.ok("jobfilebuild_1", "do", job_id=job_id)
    return job_id


def test_failing_step_fails_the_job_with_its_reason(manual):
    job_id = probe(
        manual,
        "failstep",
        '<ExeArgument id="bad" type="shell" value="echo oops >&amp;2; exit 3" priority="1"/>\n'
        '<ExeArgument id="never" type="shell" value="true" priority="2"/>',
    )
    manual.ok("jobrun_1", "do", job_id=job_id)
    job = manual.wait_state(job_id, "FAILED")
    assert job["error"] == "step bad exited with code 3: oops"
    assert [(s["state"], s["exit_code"]) for s in job["steps"]] == [
        ("FAILED", 3),
        ("PENDING", None),
    ]
    assert manual.rpc("jobrun_1", "do", job_id=job_id)[0] == -1


def test_each_step_reads_back_its_own_output_and_a_rerun_only_its_own(manual):
    # Step one prints how many times it ran before.
    one = "n=$(cat runs 2>/dev/null || echo 0); echo out-one-$n; echo $((n+1)) > runs; echo err-one >&amp;2"
    job_id = probe(
        manual,
        "echoes",
        f'<ExeArgument id="one" type="shell" value="{one}" priority="1"/>\n'
        '<ExeArgument id="two" type="shell" value="echo out-two" priority="2"/>\n'
        '<ExeArgument id="three" type="shell" value="echo bad >&amp;2; exit 3" priority="3"/>',
    )

    def logs(step, **offsets):
        out = manual.ok("jobagent_1", "logs", job_id=job_id, step=step, **offsets)
        return out["stdout"], out["stderr"]

    assert logs("one") == ("", "")  # not started yet
    for step in ("one", "two"):
        manual.ok("jobrun_1", "do", job_id=job_id)
        wait_step(manual, job_id, step)
    assert logs("one") == ("out-one-0\n", "err-one\n")
    assert logs("one", offset_out=4) == ("one-0\n", "err-one\n")

    manual.ok("jobrun_1", "do", job_id=job_id, step="one")  # again: the same files go on
    wait_step(manual, job_id, "one")
    manual.ok("jobrun_1", "do", job_id=job_id)
    job = manual.wait_state(job_id, "FAILED")

    assert job["error"] == "step three exited with code 3: bad"
    assert logs("one") == ("out-one-1\n", "err-one\n")
    assert logs("two") == ("out-two\n", "")
    assert logs("three") == ("", "bad\n")


def test_failing_hook_fails_the_step_with_its_message(manual):
    hooks = "def check(ctx):\n    raise ValueError('mesh too coarse for ' + ctx.step)\n"
    job_id = probe(
        manual,
        "failhook",
        '<ExeArgument id="solve" type="shell" value="true" priority="1" premethod="check"/>',
        hooks=hooks,
    )
    code, message = manual.rpc("jobrun_1", "do", job_id=job_id)
    assert code == -1 and "mesh too coarse for solve" in message
    job = manual.wait_state(job_id, "FAILED")
    assert "pre hook" in job["error"] and "mesh too coarse for solve" in job["error"]


def test_post_hook_failure_fails_the_job(manual):
    hooks = "def after(ctx):\n    raise RuntimeError('no output in ' + ctx.workpath)\n"
    job_id = probe(
        manual,
        "failpost",
        '<ExeArgument id="solve" type="shell" value="true" priority="1" postmethod="after"/>',
        hooks=hooks,
    )
    assert manual.rpc("jobrun_1", "do", job_id=job_id) == [0, []]
    job = manual.wait_state(job_id, "FAILED")
    assert "post hook" in job["error"] and "no output in" in job["error"]


HOSTILE = (
    "a'b\"c $(touch /tmp/mirror-pwned) `id` ; rm -rf x && echo | cat > y < z\n\\ second line * ?"
)


@pytest.mark.parametrize("kind", ["shell", "exec"])
def test_parameter_values_reach_the_step_literally(manual, kind):
    if kind == "shell":
        command = "printf %s {value} &gt; out.txt"
    else:
        command = (
            "python -c &quot;import sys; open('out.txt', 'w').write(sys.argv[1])&quot; {value}"
        )
    job_id = probe(
        manual,
        f"quote{kind}",
        f'<ExeArgument id="echo" type="{kind}" value="{command}" priority="1"/>',
        value=HOSTILE,
    )
    manual.ok("jobrun_1", "do", job_id=job_id)
    job = wait_step(manual, job_id, "echo")
    assert job["state"] == "READY", job["error"]
    assert (Path(job["path"]) / "out.txt").read_text() == HOSTILE
    assert not Path("/tmp/mirror-pwned").exists()


def test_kill_stops_the_whole_process_tree(manual):
    # Children in the background, a grandchild, and one that leaves the session.
    script = "sleep 300 &amp; (sleep 300 &amp;) ; setsid sleep 300 &amp; sh -c 'sleep 300' &amp; sleep 300"
    job_id = probe(
        manual, "forker", f'<ExeArgument id="long" type="shell" value="{script}" priority="1"/>'
    )
    manual.ok("jobrun_1", "do", job_id=job_id)
    manual.wait_state(job_id, "RUNNING")
    wait_for(lambda: len(job_processes(job_id)) >= 6, 10, what="the job's processes")
    assert manual.rpc("jobkill_1", "do", job_id=job_id) == [0, []]
    wait_for(lambda: not job_processes(job_id), 15, what="no process of the job left")
    job = manual.ok("job", "query", job_id=job_id)
    assert job["state"] == "KILLED" and job["error"] == "killed by user"
    assert job["steps"][0]["state"] == "KILLED"
    assert manual.ok("jobgetdata", "do", job_id=job_id)["result"] == {}
    assert manual.rpc("jobkill_1", "do", job_id=job_id) == [
        -1,
        f"job not running , jobid : {job_id}",
    ]


def test_kill_of_a_queued_job(manual):
    _, (job_id, *_) = dispatch_demo(manual)
    assert manual.rpc("jobkill_1", "do", job_id=job_id) == [0, []]
    assert manual.ok("job", "query", job_id=job_id)["state"] == "KILLED"
    assert manual.rpc("jobdirbuild_1", "do", job_id=job_id)[0] == 0


def test_delete_refuses_a_live_job_unless_forced(manual):
    _, (job_id, *_) = dispatch_demo(manual)
    manual.ok("jobdirbuild_1", "do", job_id=job_id)
    path = Path(manual.ok("job", "query", job_id=job_id)["path"])
    code, message = manual.rpc("jobdelete_1", "do", job_id=job_id)
    assert code == -1 and "force=1" in message
    assert path.is_dir()
    assert manual.rpc("jobdelete_1", "do", job_id=job_id, force=1) == [0, []]
    assert not path.exists()
    assert manual.rpc("job", "query", job_id=job_id) == [-1, f"job is not existed , job : {job_id}"]


def test_delete_of_a_finished_job_removes_published_files(manual):
    job_id = probe(
        manual,
        "publisher",
        '<ExeArgument id="w" type="shell" value="echo hi &gt; r.txt" priority="1"/>',
        extra='<Result><Data key="r" path="r.txt"/></Result>\n',
    )
    manual.ok("jobrun_1", "do", job_id=job_id)
    wait_step(manual, job_id, "w")
    manual.ok("jobresultrecovery_1", "do", job_id=job_id)
    assert ftp_download(manual.ok("jobgetdata", "do", job_id=job_id)["result"]["r"]) == b"hi\n"
    published = manual.tmp / "data" / "ftp" / "jobs" / str(job_id)
    assert published.is_dir()
    path = Path(manual.ok("job", "query", job_id=job_id)["path"])
    assert manual.rpc("jobdelete_1", "do", job_id=job_id) == [0, []]
    assert not path.exists()
    assert not published.exists()
    # The id of a deleted job is never handed out again.
    (newer,) = manual.ok("job", "list", limit=1)
    p_id = manual.add_project("after-delete", project_files("demo"))
    assert min(manual.ok("jobdispatch", "do", p_id=p_id, c_id=manual.demo_c_id, rid=1)) > max(
        job_id, newer["job_id"]
    )


def test_calls_for_another_machine_or_unknown_job(manual):
    p_id = manual.add_project("other", project_files("demo"))
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
