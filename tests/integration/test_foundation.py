"""The mesh starts for real: ``mirror up``, central services on SQLite and PostgreSQL, heartbeats."""

import base64
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import sqlalchemy as sa
import yaml
from nameko.standalone.rpc import ClusterRpcProxy

from adapters.bundled import package_zip, project_files
from tests.integration.conftest import make_package
from tests.mesh import ROOT, Mesh, free_port, wait_for


def processes_using(config_path):
    """Live processes whose command line names ``config_path``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(config_path) in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_mirror_up_serves_rpc_and_http_into_the_database(tmp_path, amqp_uri):
    mesh = Mesh(tmp_path, amqp_uri)
    up = subprocess.Popen(
        mesh.command("up"),
        cwd=ROOT,
        stdout=open(tmp_path / "up.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: mesh._gateway_up(), 60, what="gateway of mirror up")
        # A stock proxy with only the seed's two settings.
        config = {"AMQP_URI": mesh.config["AMQP_URI"], "rpc_exchange": mesh.exchange}
        with ClusterRpcProxy(config, timeout=10) as proxy:
            code, p_rpc = wait_for(
                lambda: proxy.project.new(name="from-rpc"), 60, what="project.new"
            )
        assert code == 0 and isinstance(p_rpc, int)
        status, body = mesh.http("/proxy/project-new", {"name": "from-http"})
        assert status == 200 and body[0] == 0 and isinstance(body[1], int)
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'mirror.db'}")
        with engine.connect() as conn:
            rows = dict(conn.execute(sa.text("SELECT id, name FROM projects")).all())
        engine.dispose()
        assert rows == {p_rpc: "from-rpc", body[1]: "from-http"}
        wait_for(
            lambda: mesh.machine(1) and mesh.machine(1)["online"], 30, what="agent of mirror up"
        )
        assert mesh.machine(1)["autorun"] is True
    finally:
        mesh.close()
        up.send_signal(signal.SIGTERM)
        code = up.wait(30)
    assert code == 0, (tmp_path / "up.log").read_text()
    wait_for(lambda: not processes_using(mesh.config_path), 10, what="no process left by mirror up")


@pytest.mark.parametrize("command", [["up"], ["central"], ["agent", "--rid", "3"], ["gateway"]])
def test_broker_down_is_one_clear_line(tmp_path, command):
    port = free_port()
    mesh = Mesh(tmp_path, "amqp://guest:guest@127.0.0.1:5672/")
    mesh.close()
    mesh.config["AMQP_URI"] = f"amqp://guest:secret@127.0.0.1:{port}/"
    mesh.config_path.write_text(yaml.safe_dump(mesh.config))
    started = time.monotonic()
    # Without rabbitmq-server on PATH: `mirror up` would start a private node
    # (tests/integration/test_broker_autostart.py).
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}
    done = subprocess.run(
        mesh.command(*command), cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 30
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"amqp://guest:***@127.0.0.1:{port}/" in lines[0]
    assert "rabbitmq-server" in lines[0] and "secret" not in lines[0]
    assert "Traceback" not in done.stdout + done.stderr


# -- central services, once on SQLite and once on PostgreSQL ------------------------
def b64(data):
    return base64.b64encode(data).decode()


def test_projects(core):
    p_id = core.ok("project", "new", name="wing", description="a sweep")
    for name, data in project_files("demo").items():
        assert core.rpc("project", "upload", p_id=p_id, name=name, content=b64(data)) == [0, []]
    # A second upload replaces the file.
    assert (
        core.rpc("project", "upload", p_id=str(p_id), name="wing.dat", content=b64(b"new"))[0] == 0
    )
    # Names are normalised, never stripped of their own characters.
    assert core.rpc("project", "upload", p_id=p_id, name="./.env", content=b64(b"K=v"))[0] == 0
    assert (
        core.rpc("project", "upload", p_id=p_id, name="in//mesh/./a.dat", content=b64(b"m"))[0] == 0
    )
    listed = {p["p_id"]: p for p in core.ok("project", "list")}
    assert listed[p_id]["name"] == "wing" and listed[p_id]["description"] == "a sweep"
    assert sorted(listed[p_id]["files"]) == [".env", "in/mesh/a.dat", "para.xml", "wing.dat"]
    assert core.ok("project", "getalljob", p_id=p_id) == []


def test_project_errors(core):
    assert core.rpc("project", "new", name="  ") == [-1, "project name must be a non-empty string"]
    assert core.rpc("project", "upload", p_id=99999, name="a", content=b64(b"x")) == [
        -1,
        "project is not existed , project : 99999",
    ]
    p_id = core.ok("project", "new", name="errs")
    code, message = core.rpc("project", "upload", p_id=p_id, name="../../etc/x", content=b64(b"x"))
    assert code == -1 and "escapes" in message and "../../etc/x" in message
    code, message = core.rpc("project", "upload", p_id=p_id, name="a.txt", content="%%%")
    assert code == -1 and "content is not valid base64" in message
    assert core.rpc("project", "getalljob", p_id="x1") == [-1, "p_id must be an integer, got 'x1'"]


def test_packages(core):
    c_id = core.ok("calcpackage", "new", name="demo", content=b64(package_zip("demo")))
    listed = {p["c_id"]: p for p in core.ok("calcpackage", "list")}
    assert listed[c_id]["name"] == "demo" and listed[c_id]["adapter"] == "demo"
    assert len(listed[c_id]["sha256"]) == 64


def test_bad_package_is_refused_naming_file_and_line(core):
    broken = make_package(
        '<Adapter name="x">\n<Steps>\n<ExeArgument id="a" value="true" priority="one"/>\n</Steps>\n</Adapter>\n'
    )
    before = core.ok("calcpackage", "list")
    code, message = core.rpc("calcpackage", "new", name="broken", content=b64(broken))
    assert code == -1 and "adapter.xml:3:" in message and "priority" in message
    code, message = core.rpc("calcpackage", "new", name="nozip", content=b64(b"not a zip"))
    assert code == -1 and "nozip" in message
    assert core.ok("calcpackage", "list") == before


def test_dispatch_errors_use_the_seed_strings(core):
    p_id = core.ok("project", "new", name="d")
    assert core.rpc("jobdispatch", "do", p_id=p_id, c_id=424242) == [
        -1,
        "calcpackage is not existed , calcpackage : 424242",
    ]
    assert core.rpc("job", "getrid", job_id=424242) == [-1, "job is not existed , job : 424242"]
    assert core.rpc("jobgetdata", "do", job_id=424242) == [-1, "job is not existed , job : 424242"]


def test_heartbeat_shows_a_killed_agent_offline(core):
    rid = 40 + (1 if core.config["DB_URL"] else 0)
    core.start_agent(rid)
    machine = core.machine(rid)
    assert machine["online"] and machine["slots"] == 4
    ruok = core.ok("machine", "ruok", rid=rid)
    assert ruok["ok"] is True and ruok["queue_length"] == 0
    core.stop(f"agent{rid}", signal.SIGKILL)
    beats = core.config["AGENT"]["heartbeat"] * core.config["AGENT"]["offline_after"]
    wait_for(lambda: not core.machine(rid)["online"], beats + 5, what=f"machine {rid} offline")
    assert core.rpc("machine", "ruok", rid=999) == [
        -1,
        "resource machine is not existed , rid : 999",
    ]


def test_agent_exits_on_sigterm_even_when_central_is_gone(tmp_path, amqp_uri):
    mesh = Mesh(tmp_path, amqp_uri)
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True)
        failed = "Machine<1> heartbeat failed"
        before = mesh.log("agent1").count(failed)
        mesh.stop("central", signal.SIGKILL)
        wait_for(
            lambda: mesh.log("agent1").count(failed) > before, 30, what="a heartbeat unanswered"
        )
        agent = mesh.procs["agent1"]
        started = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        agent.wait(45)
        assert time.monotonic() - started < 35
    finally:
        mesh.close()
