"""The management verbs over RPC, the gateway and the ``mirror`` command, against a real mesh.

One mesh per backend (SQLite, PostgreSQL): file server, central, gateway and
one autorun agent (rid 1). ``ann`` and ``bob`` are users, ``root`` an admin.
Machine 7 is played by the test with heartbeats: it never runs anything, so
jobs pinned to it stay QUEUED, unfinished, for as long as a refusal needs.
"""

import csv
import io
import re

import pytest

from tests.integration.conftest import make_package
from tests.integration.test_users import Caller, b64, mirror, new_user
from tests.mesh import Mesh, wait_for

MISSING_PROJECT = "project is not existed , project : {}"
MISSING_PACKAGE = "calcpackage is not existed , calcpackage : {}"

# Each state writes a one-line result, a two-line one and a one-line Process
# file; the state x=3 fails before producing anything.
SWEEP = """<Adapter name="sweep" version="2.0">
  <Steps>
    <ExeArgument id="run" type="shell" priority="1"
      value="test {x} -ne 3 &amp;&amp; mkdir -p out &amp;&amp; echo {x}0 &gt; out/energy.txt &amp;&amp; printf 'a\\nb\\n' &gt; out/long.txt &amp;&amp; echo r{x} &gt; res.txt"/>
  </Steps>
  <Process><Data key="residual" path="res.txt"/></Process>
  <Result>
    <Data key="energy" path="out/energy.txt"/>
    <Data key="long" path="out/long.txt"/>
  </Result>
</Adapter>"""

SWEEP_PARA = b"""<Para states="zip">
  <Param name="x" type="int" multistate="1">1;2;3</Param>
  <Param name="mode" type="str">fast</Param>
</Para>"""

SLEEPER = (
    '<Adapter name="sleeper" version="1"><Steps>'
    '<ExeArgument id="s" type="exec" value="sleep 1" priority="1"/>'
    "</Steps></Adapter>"
)
ONE_STATE = b'<Para><Param name="t" type="int">1</Param></Para>'

GHOST = 7


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mesh(request, tmp_path_factory, amqp_uri):
    db_url = request.getfixturevalue("pg_module_url") if request.param == "postgres" else None
    mesh = Mesh(tmp_path_factory.mktemp(f"manage-{request.param}"), amqp_uri, db_url)
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True)
        yield mesh
    finally:
        mesh.close()


@pytest.fixture(scope="module")
def people(mesh):
    """``{name: Caller}`` for ann, bob (users) and root (an admin), through the gateway."""
    out = {
        "ann": Caller(mesh, new_user(mesh, "ann")),
        "bob": Caller(mesh, new_user(mesh, "bob")),
        "root": Caller(mesh, new_user(mesh, "root", "--admin")),
    }
    wait_for(lambda: mesh.http("/proxy/machine-list")[0] == 401, 10, what="gateway closed")
    return out


def ftp_path(mesh, *parts):
    """Where the file server keeps ``parts`` on disk."""
    return mesh.tmp.joinpath("data", "ftp", *map(str, parts))


def ok(mesh, *args):
    done = mirror(mesh, *args)
    assert done.returncode == 0, f"mirror {' '.join(args)}: {done.stderr}"
    return done.stdout


def refused(mesh, *args):
    """The ``mirror: ...`` line of a command that fails with exit code 1."""
    done = mirror(mesh, *args)
    assert done.returncode == 1, f"mirror {' '.join(args)} succeeded: {done.stdout}"
    return done.stderr.strip()


def refusal(mesh, service, method, **kwargs):
    code, value = mesh.rpc(service, method, **kwargs)
    assert code == -1, f"{service}.{method}({kwargs}) answered {value!r}"
    return value


def ghost_offline(mesh):
    """Machine 7 known (one heartbeat) and offline again, so that jobs pinned to it wait."""
    mesh.ok("machine", "heartbeat", rid=GHOST, name="ghost", slots=2)
    wait_for(lambda: not mesh.machine(GHOST)["online"], 30, what="machine 7 offline")


def sleeper_work(mesh, name):
    """A project and package of the admin, with one job pinned (QUEUED) on machine 7."""
    p_id = mesh.add_project(name, {"para.xml": ONE_STATE})
    c_id = mesh.add_package(name, make_package(SLEEPER))
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=GHOST)
    return p_id, c_id, job_id


def test_unfinished_jobs_refuse_deletes_and_forget_until_they_end(mesh):
    ghost_offline(mesh)
    p_id, c_id, job_id = sleeper_work(mesh, "held")
    assert ftp_path(mesh, "projects", p_id, "files", "para.xml").is_file()
    assert ftp_path(mesh, "packages", c_id, "package.zip").is_file()

    assert refusal(mesh, "project", "delete", p_id=p_id) == (
        f"project {p_id} has 1 unfinished job(s): {job_id}; "
        "stop them (mirror kill) or wait until they end"
    )
    assert refusal(mesh, "calcpackage", "delete", c_id=c_id) == (
        f"calcpackage {c_id} has 1 unfinished job(s): {job_id}; "
        "stop them (mirror kill) or wait until they end"
    )
    assert refusal(mesh, "machine", "forget", rid=GHOST) == (
        f"resource machine {GHOST} has 1 unfinished job(s): {job_id}; "
        "cancel them (mirror kill) or delete them first"
    )
    # The CLI says the same, and nothing was deleted.
    assert refused(mesh, "project", "rm", str(p_id)).startswith(
        f"mirror: project {p_id} has 1 unfinished job(s): {job_id};"
    )
    assert refused(mesh, "package", "rm", str(c_id)).startswith(
        f"mirror: calcpackage {c_id} has 1 unfinished job(s)"
    )
    assert refused(mesh, "machine", "forget", str(GHOST)).startswith(
        f"mirror: resource machine {GHOST} has 1 unfinished job(s): {job_id}"
    )
    assert mesh.ok("job", "query", job_id=job_id)["state"] == "QUEUED"
    assert ftp_path(mesh, "packages", c_id, "package.zip").is_file()

    mesh.ok("job", "cancel", job_id=job_id)
    assert mesh.wait_state(job_id, "KILLED")

    out = ok(mesh, "package", "rm", str(c_id))
    assert out == f"package {c_id} (held version 1) deleted\n"
    assert not ftp_path(mesh, "packages", c_id).exists()
    assert c_id not in [c["c_id"] for c in mesh.ok("calcpackage", "list")]
    missing = MISSING_PACKAGE.format(c_id)
    assert refusal(mesh, "calcpackage", "query", c_id=c_id) == missing
    assert refusal(mesh, "calcpackage", "delete", c_id=c_id) == missing
    assert refusal(mesh, "jobdispatch", "do", p_id=p_id, c_id=c_id) == missing

    out = ok(mesh, "project", "rm", str(p_id))
    assert out == f"project {p_id} deleted: 1 file(s), 1 job(s)\n"
    assert not ftp_path(mesh, "projects", p_id).exists()
    assert refusal(mesh, "project", "delete", p_id=p_id) == MISSING_PROJECT.format(p_id)
    assert refusal(mesh, "job", "query", job_id=job_id) == f"job is not existed , job : {job_id}"

    assert ok(mesh, "machine", "forget", str(GHOST)) == f"resource machine {GHOST} forgotten\n"
    assert mesh.machine(GHOST) is None
    assert refusal(mesh, "machine", "forget", rid=GHOST) == (
        f"resource machine is not existed , rid : {GHOST}"
    )


def test_a_machine_still_sending_heartbeats_is_not_forgotten(mesh):
    message = refusal(mesh, "machine", "forget", rid=1)
    assert re.fullmatch(
        r"resource machine 1 \(.+\) is still sending heartbeats \(last at \S+\); "
        r"stop its agent first",
        message,
    ), message
    assert mesh.machine(1)["online"]
    assert refusal(mesh, "machine", "forget", rid="x") == "rid must be an integer, got 'x'"


def test_owners_delete_only_their_own(mesh, people):
    ann, bob, root = people["ann"], people["bob"], people["root"]
    p_id = ann.ok("project-new", name="ann-project")
    ann.ok("project-upload", p_id=p_id, name="para.xml", content=b64(ONE_STATE))
    c_id = ann.ok("calcpackage-new", name="ann-pkg", content=b64(make_package(SLEEPER)))
    shared = root.ok("calcpackage-new", name="root-pkg", content=b64(make_package(SLEEPER)))

    assert bob.refused("project-delete", p_id=p_id) == MISSING_PROJECT.format(p_id)
    assert bob.refused("project-results", p_id=p_id) == MISSING_PROJECT.format(p_id)
    assert bob.refused("calcpackage-delete", c_id=c_id) == MISSING_PACKAGE.format(c_id)
    assert bob.refused("calcpackage-query", c_id=c_id) == MISSING_PACKAGE.format(c_id)
    assert ann.refused("calcpackage-delete", c_id=shared) == (
        f"calcpackage {shared} is shared by root; only its owner or an admin may delete it"
    )
    assert ann.ok("calcpackage-query", c_id=shared)["c_id"] == shared
    assert ann.refused("machine-forget", rid=1) == "only an admin may forget a resource machine"
    assert [p["p_id"] for p in ann.ok("project-list")] == [p_id]

    assert ann.ok("project-delete", p_id=p_id) == {"p_id": p_id, "files": ["para.xml"], "jobs": []}
    assert ann.ok("calcpackage-delete", c_id=c_id)["c_id"] == c_id
    assert root.ok("calcpackage-delete", c_id=shared) == {
        "c_id": shared,
        "name": "root-pkg",
        "version": 1,
    }
    assert ann.ok("project-list") == []


def test_a_name_registered_again_is_its_next_version(mesh, people, tmp_path):
    zip_path = tmp_path / "heat.zip"
    zip_path.write_bytes(make_package(SWEEP))
    first = ok(mesh, "package", "add", str(zip_path))
    c1 = int(re.fullmatch(r"package (\d+) \(heat version 1\) registered\n", first).group(1))
    second = ok(mesh, "package", "add", str(zip_path))
    c2 = int(re.fullmatch(r"package (\d+) \(heat version 2\) registered\n", second).group(1))
    assert mesh.ok("calcpackage", "query", c_id=c2)["version"] == 2
    listed = {c["c_id"]: c for c in mesh.ok("calcpackage", "list")}
    assert (listed[c1]["version"], listed[c2]["version"]) == (1, 2)
    assert listed[c2]["adapter"] == "sweep" and listed[c2]["adapter_version"] == "2.0"
    assert re.search(rf"^ heat +1 +{c1} +sweep +2\.0 ", ok(mesh, "package", "list"), re.M)
    assert re.search(rf"^ heat +2 +{c2} +sweep +2\.0 ", ok(mesh, "package", "list"), re.M)

    # Versions count per owner: ann's first "heat" is her version 1.
    ann = people["ann"]
    mine = ann.ok("calcpackage-new", name="heat", content=b64(make_package(SWEEP)))
    assert ann.ok("calcpackage-query", c_id=mine)["version"] == 1
    # A deleted version is never given again.
    mesh.ok("calcpackage", "delete", c_id=c2)
    c3 = mesh.add_package("heat", make_package(SWEEP))
    assert mesh.ok("calcpackage", "query", c_id=c3)["version"] == 3


def test_project_add_get_project_and_results(mesh, tmp_path):
    p_id = mesh.ok("project", "new", name="sweep")
    para = tmp_path / "para.xml"
    para.write_bytes(b"<Para>broken")
    inputs = tmp_path / "inputs"
    (inputs / "sub").mkdir(parents=True)
    (inputs / "sub" / "mesh.dat").write_text("1 2 3\n")
    out = ok(mesh, "project", "add", str(p_id), str(para), str(inputs))
    assert out == (
        f"project {p_id}: 2 file(s) uploaded\n  added    para.xml\n  added    sub/mesh.dat\n"
    )
    para.write_bytes(SWEEP_PARA)
    out = ok(mesh, "project", "add", str(p_id), str(para))
    assert out == f"project {p_id}: 1 file(s) uploaded\n  replaced para.xml\n"
    files = next(p for p in mesh.ok("project", "list") if p["p_id"] == p_id)["files"]
    assert files == ["para.xml", "sub/mesh.dat"]

    # Bad input uploads nothing.
    assert refused(mesh, "project", "add", str(p_id), str(para), str(tmp_path / "nope")) == (
        f"mirror: {tmp_path / 'nope'}: no such file or directory"
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "para.xml").write_text("x")
    assert refused(mesh, "project", "add", str(p_id), str(para), str(other)) == (
        f"mirror: {para} and {other / 'para.xml'} would both be project file 'para.xml'"
    )
    assert refused(mesh, "project", "add", "999999", str(para)) == (
        "mirror: " + MISSING_PROJECT.format(999999)
    )

    dest = tmp_path / "dest"
    assert refused(mesh, "get", "--project", str(p_id), str(dest)) == (
        f"mirror: project {p_id} has no jobs"
    )
    c_id = mesh.add_package("sweep", make_package(SWEEP))
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    jobs = [mesh.wait_state(j, ("COMPLETED", "FAILED")) for j in ids]
    assert [j["state"] for j in jobs] == ["COMPLETED", "COMPLETED", "FAILED"]
    names = [j["state_name"] for j in jobs]

    out = ok(mesh, "get", "--project", str(p_id), str(dest))
    assert f"job {ids[2]} ({names[2]}) is FAILED: no results, skipped\n" in out
    assert out.endswith(f"project {p_id}: 2 job(s), 4 file(s), 14 bytes in {dest}\n")
    for x, name in ((1, names[0]), (2, names[1])):
        assert (dest / name / "energy" / "energy.txt").read_text() == f"{x}0\n"
        assert (dest / name / "long" / "long.txt").read_text() == "a\nb\n"
    assert not (dest / names[2]).exists()
    assert refused(mesh, "get", str(dest)) == "mirror: give a job ID or --project P_ID"
    assert refused(mesh, "get", str(ids[0]), str(dest), "--project", str(p_id)) == (
        "mirror: give a job ID or --project P_ID, not both"
    )

    rows = list(csv.reader(io.StringIO(ok(mesh, "results", str(p_id), "--csv"))))
    assert rows[0] == ["JOB", "STATE", "x", "mode", "NCPUS", "residual", "energy", "long"]
    assert rows[1][:7] == [str(ids[0]), "COMPLETED", "1", "fast", "1", "r1", "10"]
    assert rows[2][:7] == [str(ids[1]), "COMPLETED", "2", "fast", "1", "r2", "20"]
    # A file of more than one line is given by its URL.
    assert rows[1][7].startswith("ftp://") and rows[1][7].endswith("/long.txt")
    assert rows[3] == [str(ids[2]), "FAILED", "3", "fast", "1", "", "", ""]

    table = ok(mesh, "results", str(p_id))
    assert re.search(r"JOB +STATE +x +mode +NCPUS +residual +energy +long", table)
    assert re.search(rf"^ {ids[0]} +COMPLETED +1 +fast +1 +r1 +10 +long\.txt *$", table, re.M)
    assert re.search(rf"^ {ids[2]} +FAILED +3 +fast +1 +- +- +- *$", table, re.M)
    assert table.endswith(f"3 job(s) of project {p_id}\n")
    urls = list(csv.reader(io.StringIO(ok(mesh, "results", str(p_id), "--csv", "--urls"))))
    assert urls[1][6].startswith("ftp://") and urls[1][6].endswith("/energy.txt")

    # Deleting the project takes its finished jobs, their directories and published files.
    published = [ftp_path(mesh, "jobs", j) for j in ids[:2]]
    assert all(p.exists() for p in published)
    gone = mesh.ok("project", "delete", p_id=p_id)
    assert gone == {"p_id": p_id, "files": ["para.xml", "sub/mesh.dat"], "jobs": ids}
    wait_for(lambda: not any(p.exists() for p in published), 30, what="published files removed")
    assert not ftp_path(mesh, "projects", p_id).exists()


def test_the_project_and_package_of_submitted_scripts_stay(mesh):
    job_id = mesh.ok("jobdispatch", "submit", script="true\n")
    job = mesh.wait_state(job_id, "COMPLETED")
    assert refusal(mesh, "project", "delete", p_id=job["p_id"]) == (
        f"project {job['p_id']} holds every submitted script; it stays"
    )
    assert refusal(mesh, "calcpackage", "delete", c_id=job["c_id"]) == (
        f"calcpackage {job['c_id']} runs every submitted script; it stays"
    )
    assert mesh.ok("job", "query", job_id=job_id)["state"] == "COMPLETED"
