"""Custom packages in manual mode: failing steps and hooks, literal parameter values, kill
and delete of live and finished jobs."""

import base64
from pathlib import Path

import pytest

from adapters.bundled import project_files
from tests.integration.conftest import make_package
from tests.integration.manual_jobs import dispatch_demo, ftp_download, probe, wait_step
from tests.mesh import wait_for
from tests.stepprocs import job_processes


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
    wait_for(
        lambda: len(job_processes(job_id, under=manual.tmp)) >= 6, 10, what="the job's processes"
    )
    assert manual.rpc("jobkill_1", "do", job_id=job_id) == [0, []]
    wait_for(
        lambda: not job_processes(job_id, under=manual.tmp), 15, what="no process of the job left"
    )
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


def test_a_link_a_step_left_is_not_followed_by_file_generation(manual, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched")
    job_id = probe(
        manual,
        "linker",
        f'<ExeArgument id="s" type="shell" value="ln -sf {outside} IN/para.xml" priority="1"/>',
        extra='<Files><File name="para.xml" target="IN/para.xml" create="1" unzip="0"/></Files>\n',
    )
    manual.ok("jobrun_1", "do", job_id=job_id)
    root = Path(wait_step(manual, job_id, "s")["path"])
    assert (root / "IN/para.xml").is_symlink()
    code, message = manual.rpc("jobfilebuild_1", "do", job_id=job_id)
    assert code == -1
    assert "IN/para.xml" in message and "symbolic link" in message
    assert outside.read_text() == "untouched"


@pytest.mark.parametrize(
    "value, where",
    [
        ("echo $(( {value} + 1 ))", "inside arithmetic $(( ))"),
        ("echo `echo {value}`", "inside backquotes"),
    ],
)
def test_registration_refuses_a_placeholder_quoting_cannot_hold(manual, value, where):
    adapter = (
        '<Adapter name="hostile">\n<Steps>\n'
        f'<ExeArgument id="s" type="shell" value="{value}" priority="1"/>\n'
        "</Steps>\n</Adapter>\n"
    )
    code, message = manual.rpc(
        "calcpackage", "new", name="hostile", content=b64(make_package(adapter))
    )
    assert code == -1
    assert message.startswith("adapter.xml:3: ")
    assert f"placeholder {{value}} stands {where}" in message
    assert "hostile" not in [c["name"] for c in manual.ok("calcpackage", "list")]


def b64(data):
    return base64.b64encode(data).decode()
