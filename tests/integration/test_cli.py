"""The user commands of ``mirror`` (services/cli/), run as processes against a real mesh."""

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from adapters.bundled import package_zip, project_files
from tests.integration.conftest import make_package
from tests.mesh import ROOT, free_port, wait_for

TREE_ADAPTER = """<Adapter name="tree">
  <Steps>
    <ExeArgument id="make" type="shell" priority="1"
      value="mkdir -p out/sub &amp;&amp; echo a &gt; out/a.txt &amp;&amp; echo b &gt; out/sub/b.txt"/>
  </Steps>
  <Result>
    <Data key="tree" path="out"/>
    <Data key="single" path="out/a.txt"/>
  </Result>
</Adapter>"""

FAILING_ADAPTER = """<Adapter name="odd"><Steps>
  <ExeArgument id="s" type="shell" priority="1" value="case {x} in 1|3) exit 5;; esac"/>
</Steps></Adapter>"""


def mirror(mesh, *args, config=None, timeout=60):
    """Run ``mirror --config ... ARGS``; return the completed process (text output)."""
    command = mesh.command(*args)
    if config is not None:
        command[command.index("--config") + 1] = str(config)
    return subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def ok(mesh, *args):
    result = mirror(mesh, *args)
    assert result.returncode == 0, f"mirror {' '.join(args)}: {result.stderr}"
    return result.stdout


def numbers(line):
    return [int(n) for n in re.findall(r"\d+", line)]


def test_project_package_dispatch_watch_status_get_rm(autorun_mesh, tmp_path):
    folder = tmp_path / "project"
    (folder / "inputs").mkdir(parents=True)
    for name, data in project_files("trivial").items():
        (folder / name).write_bytes(data)
    (folder / "inputs" / "notes.txt").write_text("notes\n")
    out = ok(autorun_mesh, "project", "create", "cli-trivial", str(folder))
    assert re.match(r"project (\d+) \(cli-trivial\): 2 file\(s\) uploaded\n", out)
    assert "  inputs/notes.txt\n  para.xml\n" in out
    p_id = numbers(out)[0]
    assert re.search(rf"^ {p_id} +cli-trivial +2 ", ok(autorun_mesh, "project", "list"), re.M)

    zip_path = tmp_path / "trivial.zip"
    zip_path.write_bytes(package_zip("trivial"))
    out = ok(autorun_mesh, "package", "add", str(zip_path))
    c_id = int(re.fullmatch(r"package (\d+) \(trivial version \d+\) registered\n", out).group(1))
    assert "package" in ok(autorun_mesh, "package", "add", str(zip_path), "--name", "renamed")
    assert "renamed" in ok(autorun_mesh, "package", "list")

    out = ok(autorun_mesh, "dispatch", str(p_id), str(c_id), "--para", "para.xml", "--rid", "1")
    match = re.fullmatch(r"dispatched 3 job\(s\) as sweep (\d+): (\d+) (\d+) (\d+)\n", out)
    sweep_id, *ids = [int(i) for i in match.groups()]

    watch = mirror(autorun_mesh, "watch", *map(str, ids), "--interval", "0.2")
    assert watch.returncode == 0, watch.stderr
    for job_id in ids:
        assert re.search(rf"job +{job_id} finish .* 3/3 COMPLETED", watch.stdout)
        assert f"\njob {job_id} COMPLETED\n" in watch.stdout

    listing = ok(
        autorun_mesh, "jobs", "--project", str(p_id), "--state", "COMPLETED", "--limit", "10"
    )
    rows = [line.split() for line in listing.splitlines() if re.match(r"^ \d", line)]
    assert [int(r[0]) for r in rows] == sorted(ids, reverse=True)
    assert all(r[1:6] == [str(p_id), str(c_id), "1", "COMPLETED", "finish"] for r in rows)
    assert listing.endswith("3 job(s)\n")
    assert "0 job(s)" in ok(autorun_mesh, "jobs", "--project", str(p_id), "--state", "FAILED")
    sweeps = ok(autorun_mesh, "sweeps", "--project", str(p_id))
    assert re.search(rf"^ {sweep_id} +{p_id} +dispatch +3 +3 +0 +0 +0 +0 +3 +0 +0 ", sweeps, re.M)
    view = ok(autorun_mesh, "sweep", str(sweep_id))
    assert view.startswith(f"sweep {sweep_id}  (dispatch, project {p_id})  3/3 done\n")
    assert re.search(r"^COMPLETED +#{40} +3$", view, re.M)
    assert re.search(r"^FAILED +\.{40} +0$", view, re.M)

    status = ok(autorun_mesh, "status", str(ids[0]))
    assert status.startswith(f"job {ids[0]} COMPLETED\n")
    assert re.search(r"^progress +3/3", status, re.M)
    for step in ("prepare", "compute", "finish"):
        assert re.search(rf"^ {step} +DONE .* 0 *$", status, re.M)
    assert re.search(r"^result result +ftp://", status, re.M)

    dest = tmp_path / "results"
    out = ok(autorun_mesh, "get", str(ids[0]), str(dest))
    job = autorun_mesh.ok("job", "query", job_id=ids[0])
    expected = (Path(job["path"]) / "result.txt").read_bytes()
    assert (dest / "result" / "result.txt").read_bytes() == expected
    assert out.endswith(f"job {ids[0]}: 1 file(s), {len(expected)} bytes in {dest}\n")

    assert ok(autorun_mesh, "rm", str(ids[0])) == f"job {ids[0]} deleted\n"
    gone = mirror(autorun_mesh, "status", str(ids[0]))
    assert (gone.returncode, gone.stderr) == (1, f"mirror: job is not existed , job : {ids[0]}\n")


def test_get_downloads_directories_too(autorun_mesh, tmp_path):
    c_id = autorun_mesh.add_package("tree", make_package(TREE_ADAPTER))
    p_id = autorun_mesh.add_project("tree", {"para.xml": b"<Para/>"})
    (job_id,) = autorun_mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    assert autorun_mesh.wait_state(job_id, ("COMPLETED", "FAILED"))["state"] == "COMPLETED"
    dest = tmp_path / "got"
    out = ok(autorun_mesh, "get", str(job_id), str(dest))
    assert out.endswith(f"job {job_id}: 3 file(s), 6 bytes in {dest}\n")
    assert (dest / "tree" / "out" / "a.txt").read_text() == "a\n"
    assert (dest / "tree" / "out" / "sub" / "b.txt").read_text() == "b\n"
    assert (dest / "single" / "a.txt").read_text() == "a\n"


def test_submit_logs_follow_kill(autorun_mesh, tmp_path):
    out = ok(
        autorun_mesh, "submit", "-c", "for i in 1 2 3; do echo n$i; echo e$i >&2; sleep 0.3; done"
    )
    job_id = numbers(out)[0]
    follow = mirror(autorun_mesh, "logs", str(job_id), "--follow")
    assert (follow.returncode, follow.stdout, follow.stderr) == (0, "n1\nn2\nn3\n", "e1\ne2\ne3\n")
    again = mirror(autorun_mesh, "logs", str(job_id), "--step", "script")
    assert (again.returncode, again.stdout) == (0, "n1\nn2\nn3\n")

    script = tmp_path / "long.sh"
    script.write_text("#!/bin/sh\necho started\nsleep 60\n")
    out = ok(autorun_mesh, "submit", str(script), "--name", "long", "--env", "A=1")
    long = numbers(out)[0]
    wait_for(
        lambda: ok(autorun_mesh, "logs", str(long)) == "started\n", 30, what="the script to start"
    )
    assert ok(autorun_mesh, "kill", str(long)) == f"job {long} killed\n"
    assert autorun_mesh.wait_state(long, ("KILLED",), timeout=30)["error"]
    twice = mirror(autorun_mesh, "kill", str(long), str(job_id))
    assert twice.returncode == 1
    assert twice.stderr == (
        f"mirror: job not running , jobid : {long}\nmirror: job not running , jobid : {job_id}\n"
    )
    assert (
        ok(autorun_mesh, "rm", str(long), str(job_id))
        == f"job {long} deleted\njob {job_id} deleted\n"
    )


def test_watch_fails_when_a_job_fails(autorun_mesh):
    good = numbers(ok(autorun_mesh, "submit", "-c", "true"))[0]
    bad = numbers(ok(autorun_mesh, "submit", "-c", "echo broken >&2; exit 3"))[0]
    watch = mirror(autorun_mesh, "watch", str(good), str(bad), "--interval", "0.2")
    assert watch.returncode == 1
    assert f"\njob {good} COMPLETED\n" in watch.stdout
    assert re.search(rf"\njob {bad} FAILED: .+\n", watch.stdout)


def test_machines(autorun_mesh):
    out = ok(autorun_mesh, "machines")
    header, _, row = [line.split() for line in out.splitlines() if line.strip()][:3]
    assert header[:8] == ["RID", "NAME", "ONLINE", "AUTORUN", "SLOTS", "USED", "RUNNING", "QUEUED"]
    assert row[0] == "1" and row[2:5] == ["yes", "yes", "8"]


@pytest.mark.parametrize(
    "args",
    [
        ["status", "999999"],
        ["watch", "999999"],
        ["logs", "999999"],
        ["logs", "999999", "--follow"],
        ["kill", "999999"],
        ["rm", "999999", "--force"],
        ["get", "999999", "/nonexistent"],
    ],
)
def test_an_unknown_job_is_one_error_line(autorun_mesh, args):
    result = mirror(autorun_mesh, *args)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "mirror: job is not existed , job : 999999\n"


def test_other_errors_are_one_line(autorun_mesh, tmp_path):
    cases = [
        (["dispatch", "999999", "1"], "mirror: project is not existed , project : 999999\n"),
        (["jobs", "--state", "DONE"], "mirror: unknown job state 'DONE'; one of "),
        (
            ["project", "create", "x", str(tmp_path / "none")],
            f"mirror: {tmp_path}/none is not a directory\n",
        ),
        (
            ["package", "add", str(tmp_path / "none.zip")],
            f"mirror: {tmp_path}/none.zip: no such file or directory\n",
        ),
    ]
    for args, message in cases:
        result = mirror(autorun_mesh, *args)
        assert result.returncode == 1 and result.stderr.startswith(message), result.stderr
        assert result.stderr.count("\n") == 1


def test_an_unreachable_broker_is_one_line_and_exit_code_2(autorun_mesh, tmp_path):
    port = free_port()
    config = tmp_path / "nobroker.yaml"
    config.write_text(
        yaml.safe_dump(
            {**autorun_mesh.config, "AMQP_URI": f"amqp://guest:secret@127.0.0.1:{port}/"}
        )
    )
    for args in (["jobs"], ["status", "1"], ["machines"], ["logs", "1", "--follow"]):
        started = time.monotonic()
        result = mirror(autorun_mesh, *args, config=config)
        assert time.monotonic() - started < 20
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.startswith(
            f"mirror: cannot reach the RabbitMQ broker at amqp://guest:***@127.0.0.1:{port}/ ("
        )
        assert result.stderr.count("\n") == 1 and "secret" not in result.stderr


def test_rm_of_a_live_job_names_the_flag_and_agent_takes_a_name(autorun_mesh, tmp_path):
    script = tmp_path / "live.sh"
    script.write_text("#!/bin/sh\necho started\nsleep 60\n")
    live = numbers(ok(autorun_mesh, "submit", str(script), "--name", "live"))[0]
    autorun_mesh.wait_state(live, ("RUNNING",), timeout=30)
    refused = mirror(autorun_mesh, "rm", str(live))
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"mirror: job {live} is RUNNING")
    assert "--force" in refused.stderr and "force=1" not in refused.stderr
    assert ok(autorun_mesh, "rm", str(live), "--force") == f"job {live} deleted\n"

    autorun_mesh.start("agent7", "agent", "--rid", "7", "--name", "beta")
    try:
        beta = wait_for(
            lambda: next(
                (m for m in autorun_mesh.ok("machine", "list") if m["rid"] == 7 and m["online"]),
                None,
            ),
            60,
            what="agent 7 online",
        )
        assert beta["name"] == "beta"
    finally:
        autorun_mesh.stop("agent7")


def test_sweep_actions_and_their_errors(autorun_mesh, tmp_path):
    c_id = autorun_mesh.add_package("cli-fail", make_package(FAILING_ADAPTER))
    values = ";".join(map(str, range(4)))
    para_xml = f'<Para><Param name="x" type="int" multistate="1">{values}</Param></Para>'
    p_id = autorun_mesh.add_project("cli-fail", {"para.xml": para_xml.encode()})
    out = ok(autorun_mesh, "dispatch", str(p_id), str(c_id), "--watch")
    sweep_id = int(re.match(r"dispatched 4 job\(s\) as sweep (\d+):", out).group(1))
    assert re.search(r"^FAILED +#{20}\.{20} +2$", out, re.M)
    view = ok(autorun_mesh, "sweep", str(sweep_id))
    assert re.search(r"^ 2 +step s exited with code 5 *$", view, re.M)
    assert re.search(r"^ x +1 +1 +1 +100% *$", view, re.M)
    assert re.search(r"^ x +3 +1 +1 +100% *$", view, re.M)

    out = ok(autorun_mesh, "sweep", "retry", str(sweep_id), "--where", "x == 1")
    assert out == f"sweep {sweep_id}: 1 job(s) queued again\n"
    out = ok(autorun_mesh, "sweep", "throttle", str(sweep_id), "1")
    assert out == f"sweep {sweep_id}: at most 1 running\n"
    assert ok(autorun_mesh, "sweep", "throttle", str(sweep_id), "0") == (
        f"sweep {sweep_id}: at most no limit running\n"
    )
    for args, message in (
        (("sweep", "kill", str(sweep_id), "--where", "x = 1"), "where: unexpected character '='"),
        (("sweep", "throttle", str(sweep_id), "-1"), "max_running must be 0 (no limit) or more"),
        (("sweep", "retry", "999999"), "sweep is not existed , sweep : 999999"),
        (("sweep", "retry", str(sweep_id), "--states", "COMPLETED", "--where", "x == 9"), "no"),
    ):
        result = mirror(autorun_mesh, *args)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    usage = mirror(autorun_mesh, "sweep", "throttle", str(sweep_id))
    assert usage.returncode == 2 and "expected sweep throttle ID N" in usage.stderr
    wait_for(
        lambda: autorun_mesh.ok("sweep", "query", sweep_id=sweep_id)["done"] == 4,
        60,
        what="the retried job to end",
    )
    out = ok(autorun_mesh, "sweep", "rm", str(sweep_id))
    assert out == f"sweep {sweep_id} deleted with 4 job(s)\n"
