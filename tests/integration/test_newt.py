"""The machine API of seed 004 (``/api/...``) through the real gateway, as the seed's client calls it.

One mesh: central, gateway, file server and one autorun local-executor agent
(rid 1, ``alpha``). The first tests run in the open mode of a loopback mesh
without users (the caller is ``local``); the ``people`` fixture then creates
``ann`` and ``bob`` with passwords (``mirror user``), which closes the mesh.
Every call is a form post of ``requests`` with ``jobconf`` as a JSON string.
"""

import json
import os
import subprocess

import pytest
import requests

from tests.mesh import ROOT, Mesh, wait_for

MISSING_JOB = "job is not existed , job : {}"
NOT_LOGGED_IN = "not logged in: POST /api/auth with username and password, or send a bearer token"
PASSWORDS = {"ann": "ann's long password", "bob": "bob's long password"}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, amqp_uri):
    tmp = tmp_path_factory.mktemp("newt")
    mesh = Mesh(
        tmp,
        amqp_uri,
        GATEWAY={"auth_cache": 0.5, "command_timeout": 20},
        AGENT={"name": "alpha"},
    )
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, slots=4)
        yield mesh
    finally:
        mesh.close()


def mirror(mesh, *args, stdin=None):
    done = subprocess.run(
        mesh.command(*args),
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def people(mesh):
    """``{name: token}`` of ann and bob, each with a password; the mesh is closed afterwards."""
    tokens = {}
    for name, password in PASSWORDS.items():
        tokens[name] = mirror(mesh, "user", "add", name)
        mirror(mesh, "user", "passwd", name, stdin=password + "\n")
    wait_for(lambda: api(mesh, "get", "/job")[0] == 401, 10, what="gateway closed")
    return tokens


def api(mesh, method, path, session=None, **kwargs):
    """``(HTTP status, envelope)`` of a call to ``/api<path>``."""
    caller = session or requests
    response = getattr(caller, method)(f"{mesh.base_url}/api{path}", timeout=90, **kwargs)
    body = response.json()
    assert body["status_code"] == response.status_code
    assert body["status"] == ("OK" if response.status_code == 200 else "ERROR")
    return response.status_code, body


def ok(mesh, method, path, session=None, **kwargs):
    status, body = api(mesh, method, path, session, **kwargs)
    assert (status, body["error"]) == (200, ""), body
    return body["output"]


def logged_in(mesh, name):
    session = requests.Session()
    data = {"username": name, "password": PASSWORDS[name]}
    assert ok(mesh, "post", "/auth", session, data=data)["username"] == name
    return session


def work_root(mesh):
    return mesh.machine(1)["roots"][0]


# -- open mode: a loopback mesh without users ------------------------------------------------


def test_open_mode_caller_is_local(mesh):
    assert ok(mesh, "get", "/auth") == {"auth": True, "username": "local", "admin": True}
    out = ok(mesh, "post", "/command/alpha", data={"command": "pwd"})
    assert out == {
        "output": os.path.join(work_root(mesh), "users/local/newt") + "\n",
        "retcode": 0,
        "error": "",
    }


def test_command_output_retcode_and_errors(mesh):
    command = "echo out; echo err >&2; exit 3"
    out = ok(mesh, "post", "/command/alpha/", data={"command": command})
    assert out == {"output": "out\n", "retcode": 3, "error": "err\n"}
    # By rid as well, and the seed's refusal shape of a failing program.
    out = ok(mesh, "post", "/command/1", data={"command": "ls /nonexistent-newt"})
    assert out["retcode"] == 2 and "nonexistent-newt" in out["error"]


def test_overview_and_unknown_machine(mesh):
    overview = ok(mesh, "get", "/job")
    machine = mesh.machine(1)
    alpha = overview["alpha"]
    assert set(alpha) == {"queue", "info"}
    assert alpha["queue"]["health"] == 1.0
    assert 0 <= alpha["queue"]["time"] <= 5
    assert {alpha["queue"]["PD"], alpha["queue"]["R"]} <= set(range(0, 5))
    work = alpha["info"]["work"]
    assert work["idle"] + work["alloc"] == machine["slots"] == 4
    for path in ("/job/nowhere", "/job/nowhere/1", "/job/7"):
        status, body = api(mesh, "get", path)
        assert (status, body["error"]) == (404, f"unknown machine: {path.split('/')[2]}")
    status, body = api(mesh, "post", "/command/nowhere", data={"command": "true"})
    assert (status, body["error"]) == (404, "unknown machine: nowhere")


# -- with users ------------------------------------------------------------------------------


def test_not_logged_in(mesh, people):
    status, body = api(mesh, "post", "/command/alpha", data={"command": "true"})
    assert (status, body["error"], body["output"]) == (401, NOT_LOGGED_IN, "")
    for path in ("/job", "/job/alpha", "/job/alpha/1"):
        assert api(mesh, "get", path)[0] == 401
    assert ok(mesh, "get", "/auth") == {"auth": False, "username": None, "admin": False}


def test_login_whoami_logout(mesh, people):
    session = requests.Session()
    wrong = {"username": "ann", "password": "not hers"}
    status, body = api(mesh, "post", "/auth", session, data=wrong)
    assert (status, body["error"]) == (401, "wrong user name or password")
    assert not session.cookies

    response = session.post(
        f"{mesh.base_url}/api/auth", data={"username": "ann", "password": PASSWORDS["ann"]}
    )
    assert response.status_code == 200
    assert "HttpOnly" in response.headers["Set-Cookie"]
    assert ok(mesh, "get", "/auth", session) == {"auth": True, "username": "ann", "admin": False}
    assert "alpha" in ok(mesh, "get", "/job", session)

    assert ok(mesh, "delete", "/auth", session)["auth"] is False
    assert api(mesh, "get", "/job", session)[0] == 401
    # A bearer token works without a session.
    headers = {"Authorization": f"Bearer {people['bob']}"}
    assert ok(mesh, "get", "/auth", headers=headers)["username"] == "bob"
    out = ok(mesh, "post", "/command/alpha", headers=headers, data={"command": "pwd"})
    assert out["output"] == os.path.join(work_root(mesh), "users/bob/newt") + "\n"


def test_submit_queue_query_kill(mesh, people):
    ann, bob = logged_in(mesh, "ann"), logged_in(mesh, "bob")
    script = "#!/bin/sh\necho started\nsleep 60\n"
    conf = json.dumps({"job_name": "hello", "time_limit": 10, "scale_cores": 1})
    out = ok(mesh, "post", "/job/alpha/", ann, data={"jobscript": script, "jobconf": conf})
    jobid = out["jobid"]
    assert isinstance(jobid, str) and jobid.isdigit()

    queue = ok(mesh, "get", "/job/alpha/", ann)
    assert set(queue) == {"status", "nodelist", "name", "partition", "user", "time", "nodes", "id"}
    assert queue["name"][jobid] == "hello" and queue["user"][jobid] == "ann"
    assert queue["partition"][jobid] == "work" and queue["id"][jobid] == jobid
    assert queue["nodes"][jobid] == 1

    def running():
        return ok(mesh, "get", f"/job/alpha/{jobid}", ann)["status"][jobid] == "Running"

    wait_for(running, 30, what=f"job {jobid} Running")
    mesh.wait_state(int(jobid), "RUNNING")  # the step itself has started
    queue = ok(mesh, "get", "/job/1", ann)
    assert (queue["status"][jobid], queue["nodelist"][jobid]) == ("Running", "alpha")
    info = ok(mesh, "get", f"/job/alpha/{jobid}", ann)
    assert set(info) == {"status", "tasks", "name", "partition", "time", "nodes", "id", "exitcode"}
    assert (info["name"][jobid], info["exitcode"][jobid]) == ("hello", "0:0")
    assert info["tasks"][jobid] == "script RUNNING 0:0"

    # The script was written into ann's own directory (the seed's ~/newt).
    listing = ok(mesh, "post", "/command/alpha", ann, data={"command": "ls"})["output"]
    assert listing.startswith("newt_") and listing.strip().endswith(".sh")

    # Someone else's job is missing for bob, everywhere.
    missing = MISSING_JOB.format(jobid)
    for method in ("get", "delete"):
        status, body = api(mesh, method, f"/job/alpha/{jobid}", bob)
        assert (status, body["error"]) == (404, missing)
    assert jobid not in ok(mesh, "get", "/job/alpha", bob)["id"]
    # On another machine's path it is missing too.
    status, body = api(mesh, "get", "/job/7", ann)
    assert status == 404

    assert ok(mesh, "delete", f"/job/alpha/{jobid}", ann) == ""
    assert mesh.wait_state(int(jobid), "KILLED")["owner"] == "ann"
    assert ok(mesh, "get", f"/job/alpha/{jobid}", ann)["status"][jobid] == "Cancelled"
    assert jobid not in ok(mesh, "get", "/job/alpha", ann)["id"]
    # Killing it again succeeds, as the REST cancel does.
    assert ok(mesh, "delete", "/job/alpha", ann, data={"jobid": jobid}) == ""


def test_jobfile_with_args_and_wdir(mesh, people):
    ann = logged_in(mesh, "ann")
    root = os.path.join(work_root(mesh), "users/ann")
    command = "mkdir -p ../run && printf 'echo \"$@\" > out.txt; pwd >> out.txt\\n' > run.sh"
    assert ok(mesh, "post", "/command/alpha", ann, data={"command": command})["retcode"] == 0
    conf = {"job_wdir": os.path.join(root, "run"), "jobfile_args": "a 'b c'"}
    data = {"jobfile": "run.sh", "jobconf": json.dumps(conf)}
    jobid = ok(mesh, "post", "/job/alpha", ann, data=data)["jobid"]
    job = mesh.wait_state(int(jobid), ("COMPLETED", "FAILED"))
    assert job["state"] == "COMPLETED", job["error"]
    info = ok(mesh, "get", f"/job/alpha/{jobid}", ann)
    assert (info["status"][jobid], info["exitcode"][jobid]) == ("Completed", "0:0")
    assert (info["name"][jobid], info["tasks"][jobid]) == ("run.sh", "script DONE 0:0")
    out = ok(mesh, "post", "/command/alpha", ann, data={"command": "cat ../run/out.txt"})
    assert out["output"] == f"a b c\n{root}/run\n"


def test_bad_requests(mesh, people):
    ann = logged_in(mesh, "ann")
    cases = [
        ({}, "send either jobscript (with an optional jobfilepath) or jobfile"),
        ({"jobfile": "x.sh", "jobconf": "{"}, "jobconf is not valid JSON"),
        ({"jobfile": "/etc/passwd"}, "jobfile '/etc/passwd' is outside the allowed roots"),
        (
            {"jobfile": "x.sh", "jobconf": json.dumps({"scale_cores": 0})},
            "jobconf.scale_cores must be a positive integer, got 0",
        ),
    ]
    for data, message in cases:
        status, body = api(mesh, "post", "/job/alpha", ann, data=data)
        assert status == 400 and body["error"].startswith(message), body
    status, body = api(mesh, "post", "/command/alpha", ann, data={})
    assert (status, body["error"]) == (400, "missing field: command")
    status, body = api(mesh, "put", "/job/alpha", ann)
    assert status == 405
    # JSON bodies work as forms do.
    out = ok(mesh, "post", "/command/alpha", ann, json={"command": "echo json"})
    assert out["output"] == "json\n"


def test_command_time_limit(mesh, people):
    ann = logged_in(mesh, "ann")
    out = ok(mesh, "post", "/command/alpha", ann, data={"command": "echo begun; sleep 120"})
    assert out["output"] == "begun\n"
    assert out["retcode"] != 0
    # GATEWAY.command_timeout is 20 s: the job's time limit, in minutes.
    assert out["error"].endswith("time limit of 0.333333 min exceeded in step script\n"), out
