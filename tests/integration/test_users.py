"""Users, ownership and the sealed internal calls, through the real gateway and broker.

One mesh per backend (SQLite, PostgreSQL): central, gateway (``expose: ["*"]``,
so that only the internal rule refuses), file server and one agent in autorun.
``ann`` and ``bob`` are users, ``root`` an admin, all made with ``mirror user``.
"""

import base64
import os
import subprocess

import pytest

from tests.integration.conftest import make_package
from tests.mesh import ROOT, Mesh, wait_for

MISSING_JOB = "job is not existed , job : {}"
MISSING_PROJECT = "project is not existed , project : {}"
MISSING_PACKAGE = "calcpackage is not existed , calcpackage : {}"

SLEEPER = (
    '<Adapter name="sleeper" version="1"><Steps>'
    '<ExeArgument id="s" type="exec" value="sleep {t}" priority="1"/>'
    "</Steps></Adapter>"
)


def para(seconds):
    return f'<Para><Param name="t" type="int">{seconds}</Param></Para>'.encode()


def b64(data):
    return base64.b64encode(data).decode()


def mirror(mesh, *args, stdin=None):
    """``mirror --config <mesh> ARGS`` as a completed process (text)."""
    return subprocess.run(
        mesh.command(*args),
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def new_user(mesh, name, *flags):
    """Add user ``name`` with ``mirror user add``; answer the token it prints."""
    done = mirror(mesh, "user", "add", name, *flags)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("mirror_") and "\n" not in token
    return token


class Caller:
    """Calls through the gateway with one bearer token."""

    def __init__(self, mesh, token):
        self.mesh = mesh
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def proxy(self, target, **kwargs):
        """``(HTTP status, [code, value])`` of ``POST /proxy/<target>``."""
        return self.mesh.http(f"/proxy/{target}", data=kwargs, headers=self.headers)

    def ok(self, target, **kwargs):
        status, (code, value) = self.proxy(target, **kwargs)
        assert (status, code) == (200, 0), f"{target}: {status} {value}"
        return value

    def refused(self, target, **kwargs):
        """The message of a 200 ``[-1, message]`` answer."""
        status, (code, value) = self.proxy(target, **kwargs)
        assert (status, code) == (200, -1), f"{target}: {status} {code} {value}"
        return value

    def rest(self, path, data=None):
        return self.mesh.http(path, data=data, headers=self.headers)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mesh(request, tmp_path_factory, amqp_uri):
    db_url = request.getfixturevalue("pg_module_url") if request.param == "postgres" else None
    mesh = Mesh(
        tmp_path_factory.mktemp(f"users-{request.param}"),
        amqp_uri,
        db_url,
        GATEWAY={"expose": ["*"], "auth_cache": 0.5},
    )
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True)
        yield mesh
    finally:
        mesh.close()


@pytest.fixture(scope="module")
def people(mesh):
    """``{name: Caller}`` for ann, bob (users) and root (an admin)."""
    # Before the first user, a loopback gateway lets anyone act as the admin local.
    status, (code, me) = mesh.http("/proxy/user-whoami")
    assert (status, code, me) == (200, 0, {"name": "local", "admin": True})
    out = {
        "ann": Caller(mesh, new_user(mesh, "ann")),
        "bob": Caller(mesh, new_user(mesh, "bob")),
        "root": Caller(mesh, new_user(mesh, "root", "--admin")),
    }
    # The gateway's answer about "no users" lasts auth_cache seconds at most.
    wait_for(lambda: mesh.http("/proxy/machine-list")[0] == 401, 10, what="gateway closed")
    return out


def own_work(caller, name, seconds=60):
    """A project, a package of the caller's own and a dispatched job: ``(p_id, c_id, job_id)``."""
    p_id = caller.ok("project-new", name=name)
    caller.ok("project-upload", p_id=p_id, name="para.xml", content=b64(para(seconds)))
    c_id = caller.ok("calcpackage-new", name=name, content=b64(make_package(SLEEPER)))
    (job_id,) = caller.ok("jobdispatch-do", p_id=p_id, c_id=c_id)
    return p_id, c_id, job_id


def test_whoami_and_tokens(mesh, people):
    assert people["ann"].ok("user-whoami") == {"name": "ann", "admin": False}
    assert people["root"].ok("user-whoami") == {"name": "root", "admin": True}
    for headers in ({}, {"Authorization": "Bearer mirror_nobody"}):
        status, body = mesh.http("/proxy/machine-list", headers=headers)
        assert (status, body) == (401, [-1, "missing or wrong bearer token"])
    status, body = mesh.http("/jobs/query/1")
    assert (status, body) == (401, {"detail": "missing or wrong bearer token"})


def test_someone_elses_work_is_missing(mesh, people):
    ann, bob, root = people["ann"], people["bob"], people["root"]
    p_id, c_id, job_id = own_work(ann, "ann-work")
    mesh.wait_state(job_id, "RUNNING")
    assert ann.ok("job-query", job_id=job_id)["owner"] == "ann"
    missing = MISSING_JOB.format(job_id)

    # Reads: exactly as for a job that does not exist.
    for target in ("job-query", "job-events", "job-getrid", "job-logs", "jobgetdata-do"):
        assert bob.refused(target, job_id=job_id) == missing, target
    assert set(ann.ok("job-logs", job_id=job_id)) >= {"stdout", "stderr"}
    assert job_id not in [j["job_id"] for j in bob.ok("job-list")]
    assert job_id in [j["job_id"] for j in ann.ok("job-list")]
    # A machine's health names only the caller's own jobs; an admin sees them all.
    assert job_id in ann.ok("machine-ruok", rid=1)["running_jobs"]
    assert job_id in root.ok("machine-ruok", rid=1)["running_jobs"]
    health = bob.ok("machine-ruok", rid=1)
    assert job_id not in health["running_jobs"] and health["running"] >= 1
    assert p_id not in [p["p_id"] for p in bob.ok("project-list")]
    assert c_id not in [c["c_id"] for c in bob.ok("calcpackage-list")]
    assert bob.refused("project-getalljob", p_id=p_id) == MISSING_PROJECT.format(p_id)
    assert bob.refused(
        "project-upload", p_id=p_id, name="x", content=b64(b"x")
    ) == MISSING_PROJECT.format(p_id)

    # Acts, on central and on the job's machine: missing too, and nothing happens.
    assert bob.refused("job-cancel", job_id=job_id) == missing
    for target in ("jobkill_1-do", "jobdelete_1-do", "jobrun_1-do", "jobprocessmonitor_1-do"):
        assert bob.refused(target, job_id=job_id, force=1) == missing, target
    assert bob.rest(f"/jobs/query/{job_id}") == (404, {"detail": missing})
    assert bob.rest(f"/jobs/cancel/{job_id}", data={}) == (404, {"detail": missing})
    assert ann.ok("job-query", job_id=job_id)["state"] == "RUNNING"

    # Dispatch of someone else's project or package: missing.
    bob_p = bob.ok("project-new", name="bob-work")
    bob.ok("project-upload", p_id=bob_p, name="para.xml", content=b64(para(1)))
    assert bob.refused("jobdispatch-do", p_id=p_id, c_id=c_id) == MISSING_PROJECT.format(p_id)
    assert bob.refused("jobdispatch-do", p_id=bob_p, c_id=c_id) == MISSING_PACKAGE.format(c_id)

    # An admin sees and acts on everything; sharing is for admins only.
    assert root.ok("job-query", job_id=job_id)["owner"] == "ann"
    assert job_id in [j["job_id"] for j in root.ok("job-list")]
    assert p_id in [p["p_id"] for p in root.ok("project-list")]
    assert bob.refused("calcpackage-share", c_id=c_id) == "only an admin may share a calcpackage"
    root.ok("calcpackage-share", c_id=c_id, shared=1)
    assert c_id in [c["c_id"] for c in bob.ok("calcpackage-list")]
    (bob_job,) = bob.ok("jobdispatch-do", p_id=bob_p, c_id=c_id)
    assert mesh.wait_state(bob_job, "COMPLETED")["owner"] == "bob"
    assert ann.refused("job-query", job_id=bob_job) == MISSING_JOB.format(bob_job)
    # A machine's many-jobs kill (central's sweep.kill) opens to no user: without
    # a job_id the gateway cannot check ownership, and an own job_id beside it is refused.
    assert "job_id must be an integer" in bob.refused("jobkill_1-do", job_ids=[job_id])
    both = bob.refused("jobkill_1-do", job_id=bob_job, job_ids=[job_id])
    assert both == "name job_id or job_ids, not both"
    assert ann.ok("job-query", job_id=job_id)["state"] == "RUNNING"

    # The owner kills and deletes their own job through its machine.
    assert ann.ok("jobkill_1-do", job_id=job_id) == []
    assert mesh.wait_state(job_id, "KILLED")
    assert ann.ok("jobdelete_1-do", job_id=job_id) == []
    assert root.refused("job-query", job_id=job_id) == missing


def test_someone_elses_sweep_is_missing(mesh, people):
    ann, bob, root = people["ann"], people["bob"], people["root"]
    _, _, job_id = own_work(ann, "ann-sweep")
    sweep_id = ann.ok("job-query", job_id=job_id)["sweep_id"]
    assert ann.ok("sweep-query", sweep_id=sweep_id)["owner"] == "ann"
    missing = f"sweep is not existed , sweep : {sweep_id}"
    for target, kwargs in (
        ("sweep-query", {}),
        ("sweep-jobs", {}),
        ("sweep-kill", {}),
        ("sweep-retry", {}),
        ("sweep-delete", {"force": 1}),
        ("sweep-throttle", {"max_running": 1}),
    ):
        assert bob.refused(target, sweep_id=sweep_id, **kwargs) == missing, target
    assert sweep_id not in [s["sweep_id"] for s in bob.ok("sweep-list")]
    assert sweep_id in [s["sweep_id"] for s in ann.ok("sweep-list")]
    assert sweep_id in [s["sweep_id"] for s in root.ok("sweep-list")]
    assert ann.ok("job-query", job_id=job_id)["state"] in (
        "QUEUED",
        "PREPARING",
        "READY",
        "RUNNING",
    )
    assert ann.ok("sweep-kill", sweep_id=sweep_id) == [job_id]
    assert mesh.wait_state(job_id, "KILLED")
    assert root.ok("sweep-delete", sweep_id=sweep_id) == {"deleted": 1}


def test_an_admins_package_is_shared_and_rest_jobs_belong_to_their_submitter(mesh, people):
    ann, bob, root = people["ann"], people["bob"], people["root"]
    shared = root.ok("calcpackage-new", name="shared", content=b64(make_package(SLEEPER)))
    assert shared in [c["c_id"] for c in bob.ok("calcpackage-list")]
    p_id = bob.ok("project-new", name="uses-shared")
    bob.ok("project-upload", p_id=p_id, name="para.xml", content=b64(para(0)))
    (job_id,) = bob.ok("jobdispatch-do", p_id=p_id, c_id=shared)
    assert mesh.wait_state(job_id, "COMPLETED")["owner"] == "bob"

    body = {"job": {"name": "mine", "time_limit": "5"}, "script": "#!/bin/sh\nsleep 60"}
    status, answer = ann.rest("/jobs/submit", data=body)
    assert status == 200
    submitted = int(answer["job_id"])
    assert ann.rest(f"/jobs/query/{submitted}")[0] == 200
    assert bob.rest(f"/jobs/query/{submitted}")[0] == 404
    assert bob.rest(f"/jobs/cancel/{submitted}", data={})[0] == 404
    assert ann.rest(f"/jobs/cancel/{submitted}", data={})[0] == 200
    assert mesh.wait_state(submitted, "KILLED")


INTERNAL_CALLS = [
    "job-fetch",
    "job-claim",
    "job-report",
    "job-batch",
    "job-remove",
    "job-owned",
    "machine-heartbeat",
    "jobagent_1-logs",
    "jobagent_1-status",
    "user-add",
    "user-list",
    "user-token",
    "user-revoke",
    "user-passwd",
    "user-authenticate",
    "user-login",
]


@pytest.mark.parametrize("target", INTERNAL_CALLS)
def test_internal_calls_are_refused_over_http(mesh, people, target):
    service, method = target.split("-")
    refused = (403, [-1, f"{service}.{method} is internal to the mesh"])
    for caller in (people["root"], people["ann"]):
        assert mesh.http(f"/proxy/{target}", headers=caller.headers) == refused
        assert caller.proxy(target, job_id=1, rid=1, name="x", changes={}) == refused


def test_reports_come_only_from_the_jobs_machine(mesh, people):
    c_id = mesh.add_package("forgery", make_package(SLEEPER))
    p_id = mesh.add_project("forgery", {"para.xml": para(1)})
    # Placed on machine 7, known but with no agent: nothing runs it.
    mesh.ok("machine", "heartbeat", rid=7, name="m7", slots=1)
    (placed,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=7)
    forged = {"state": "RUNNING", "pid": 1, "message": "forged"}

    code, message = mesh.rpc("job", "report", job_id=placed, rid=8, changes=forged)
    assert (code, message) == (-1, f"job {placed} belongs to resource machine 7, not 8")
    code, message = mesh.rpc("job", "report", job_id=placed, rid=None, changes=forged)
    assert (code, message) == (-1, "rid must be an integer, got None")
    code, message = mesh.rpc("job", "claim", job_id=placed, rid=8)
    assert code == -1 and message.endswith("not 8")
    code, message = mesh.rpc("job", "fetch", job_id=placed, rid=8)
    assert code == -1 and message.endswith("not 8")
    out = mesh.ok("job", "batch", rid=8, reports=[{"job_id": placed, "changes": forged}])
    assert out["reports"] == [[-1, f"job {placed} belongs to resource machine 7, not 8"]]
    job = mesh.ok("job", "query", job_id=placed)
    assert (job["state"], job["pid"]) == ("QUEUED", None)


def test_user_commands(mesh, people):
    token = new_user(mesh, "carl")
    carl = Caller(mesh, token)
    assert carl.ok("user-whoami")["name"] == "carl"
    listed = mirror(mesh, "user", "list")
    assert listed.returncode == 0
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines() if line.strip()}
    assert {"ann", "bob", "root", "carl"} <= set(rows)
    assert rows["root"][1] == "yes" and rows["carl"][1] == "no"

    # A password, from stdin; the login of the machine API checks it (over the broker).
    done = mirror(mesh, "user", "passwd", "carl", stdin="correct horse\n")
    assert done.returncode == 0, done.stderr
    assert mesh.ok("user", "login", name="carl", password="correct horse")["name"] == "carl"
    assert mesh.rpc("user", "login", name="carl", password="wrong one") == [
        -1,
        "wrong user name or password",
    ]
    assert "yes" in mirror(mesh, "user", "list").stdout.split("carl", 1)[1].splitlines()[0]

    # A new token replaces the old one.
    done = mirror(mesh, "user", "token", "carl")
    assert done.returncode == 0, done.stderr
    fresh = Caller(mesh, done.stdout.strip())
    wait_for(lambda: carl.proxy("user-whoami")[0] == 401, 10, what="old token refused")
    assert fresh.ok("user-whoami")["name"] == "carl"

    # Revoked: token and password refused.
    assert mirror(mesh, "user", "revoke", "carl").returncode == 0
    wait_for(lambda: fresh.proxy("user-whoami")[0] == 401, 10, what="revoked token refused")
    assert mesh.rpc("user", "login", name="carl", password="correct horse")[0] == -1

    # Errors are one line and exit code 1.
    for args, message in (
        (("user", "add", "carl"), "user carl exists already"),
        (("user", "add", "local"), "user name 'local' is reserved"),
        (("user", "token", "nobody"), "user is not existed , user : nobody"),
    ):
        done = mirror(mesh, *args)
        assert (done.returncode, done.stderr.strip()) == (1, f"mirror: {message}")
