"""The Python client (services.client) against a real mesh with one autorun agent."""

import io
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.bundled import package_zip, project_files
from services.client import (
    Mirror,
    MirrorError,
    configure,
    get_job_info,
    get_job_status,
    graceful_shutdown_on_keyboard_interrupt,
    stop_job,
    submit_job,
    wait_for_all_jobs,
)
from services.client import functions as mirror_client
from services.common.jobstates import FINAL
from tests.mesh import ROOT, free_port, wait_for


@pytest.fixture(scope="module")
def client(autorun_mesh):
    with Mirror(autorun_mesh.config["AMQP_URI"], autorun_mesh.exchange, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def default(autorun_mesh):
    """The module functions' default client, configured from the mesh's config file."""
    client = configure(str(autorun_mesh.config_path))
    yield client
    client.close()
    mirror_client._default = None


def test_projects_packages_dispatch_and_wait(client, autorun_mesh, tmp_path):
    folder = tmp_path / "project"
    (folder / "extra").mkdir(parents=True)
    for name, data in project_files("trivial").items():
        (folder / name).write_bytes(data)
    (folder / "extra" / "notes.txt").write_text("kept\n")
    p_id = client.new_project("client-trivial", "from the client")
    assert client.upload_dir(p_id, folder) == ["extra/notes.txt", "para.xml"]
    client.upload(p_id, "more.txt", "text is encoded as UTF-8")
    project = next(p for p in client.projects() if p["p_id"] == p_id)
    assert sorted(project["files"]) == ["extra/notes.txt", "more.txt", "para.xml"]

    zip_path = tmp_path / "trivial.zip"
    zip_path.write_bytes(package_zip("trivial"))
    c_id = client.add_package(zip_path)
    assert client.add_package(package_zip("trivial"), name="again") != c_id
    assert {"trivial", "again"} <= {c["name"] for c in client.packages()}

    ids = client.dispatch(p_id, c_id)
    assert len(ids) == 3
    seen = []
    jobs = client.wait(ids, interval=0.2, timeout=60, on_update=seen.append)
    assert seen and [j["job_id"] for j in jobs] == ids
    assert {j["state"] for j in jobs} == {"COMPLETED"}
    assert client.getrid(ids[0]) == 1
    assert [s["id"] for s in client.query(ids[0])["steps"]] == ["prepare", "compute", "finish"]
    assert client.events(ids[0])[0]["state"] == "QUEUED"
    data = client.getdata(ids[0])
    assert data["process"]["currentstep"] == data["process"]["allstep"] == "3"
    assert data["result"]["result"].startswith("ftp://")
    assert sorted(j["job_id"] for j in client.jobs(p_id=p_id)) == ids
    assert sorted(j["job_id"] for j in client.project_jobs(p_id)) == ids
    # A page at a time, newest first: the next page starts after the last job of one.
    first = [j["job_id"] for j in client.jobs(p_id=p_id, limit=2)]
    assert first == ids[:0:-1]
    assert [j["job_id"] for j in client.jobs(p_id=p_id, limit=2, after=first[-1])] == ids[:1]
    assert [j["job_id"] for j in client.project_jobs(p_id, limit=1, after=ids[2])] == ids[1:2]
    assert {j["job_id"] for j in client.jobs(state=["COMPLETED"], rid=1)} >= set(ids)
    (machine,) = client.machines()
    assert (machine["rid"], machine["name"], machine["online"]) == (1, "alpha", True)
    assert isinstance(client.ruok(1), dict)

    # Deleted in central (job.delete): the machine removes its directory and published files at
    # a heartbeat, says so, and central stops asking.
    job_dir = Path(client.query(ids[0])["path"])
    data = Path(autorun_mesh.config["DATA_DIR"])
    published = data / "ftp" / "jobs" / str(ids[0])
    assert job_dir.is_dir() and published.is_dir()
    assert client.call("job", "delete", job_id=ids[0]) == []
    with pytest.raises(MirrorError, match=f"job is not existed , job : {ids[0]}"):
        client.query(ids[0])
    wait_for(lambda: not job_dir.exists() and not published.exists(), 30, what="leftovers removed")
    database = sa.create_engine(f"sqlite:///{data / 'mirror.db'}")
    try:

        def cleanups():
            with database.connect() as conn:
                return conn.execute(sa.text("SELECT job_id FROM cleanups")).scalars().all()

        wait_for(lambda: ids[0] not in cleanups(), 30, what="the cleanup reported done")
    finally:
        database.dispose()


def test_errors_carry_the_server_message(client, autorun_mesh):
    with pytest.raises(MirrorError) as err:
        client.query(999999)
    assert str(err.value) == "job is not existed , job : 999999"
    assert (err.value.service, err.value.method) == ("job", "query")
    with pytest.raises(MirrorError, match="calcpackage is not existed , calcpackage : 424242"):
        client.dispatch(client.new_project("no-package"), 424242)
    with pytest.raises(MirrorError, match="no nosuch service is running"):
        client.call("nosuch", "do")
    with pytest.raises(MirrorError, match="resource machine 7 does not answer"):
        client.call("jobkill_7", "do", job_id=1)
    # The same client goes on working after errors.
    assert client.machines()[0]["rid"] == 1


def test_from_config_and_an_unreachable_broker(autorun_mesh):
    with Mirror.from_config(str(autorun_mesh.config_path)) as client:
        assert client.exchange == autorun_mesh.exchange
        assert client.machines()[0]["rid"] == 1
    port = free_port()
    with Mirror(f"amqp://guest:secret@127.0.0.1:{port}/", timeout=5) as client:
        with pytest.raises(MirrorError) as err:
            client.machines()
    assert str(err.value).startswith(
        f"cannot reach the RabbitMQ broker at amqp://guest:***@127.0.0.1:{port}/"
    )


def test_submit_logs_follow_and_kill(client):
    job_id = client.submit(
        "for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.2; done",
        name="counter",
        environment={"UNUSED": "1"},
    )
    chunks = list(client.follow_logs(job_id, interval=0.1))
    assert "".join(c["stdout"] for c in chunks) == "out 1\nout 2\nout 3\n"
    assert "".join(c["stderr"] for c in chunks) == "err 1\nerr 2\nerr 3\n"
    assert client.query(job_id)["state"] == "COMPLETED"
    logs = client.logs(job_id)
    assert (logs["step"], logs["stdout"], logs["offset_out"]) == (
        "script",
        "out 1\nout 2\nout 3\n",
        18,
    )
    assert client.logs(job_id, offset_out=18, offset_err=18)["stdout"] == ""

    long = client.submit("echo started; sleep 60")
    wait_for(lambda: client.logs(long)["stdout"] == "started\n", 30, what="the script to start")
    client.kill(long)
    job = client.wait(long, interval=0.2, timeout=30)[0]
    assert job["state"] == "KILLED"
    with pytest.raises(MirrorError, match=f"job not running , jobid : {long}"):
        client.kill(long)
    client.delete(long)


def test_submit_job_and_wait_for_all_jobs(default, autorun_mesh):
    env = {"env_vars": {"GREETING": "hello", "N": 3}, "working_dir": str(autorun_mesh.shared)}
    first = submit_job(
        "sh -c 'echo $GREETING $N; pwd'",
        runtime_env=env,
        job_id="greeting",
        metadata={"user": "alice"},
        resource_requirements={"CPU": 2},
        tags=None,
    )
    second = submit_job("/bin/echo second", preferred_cluster="alpha", submission_id="sub-1")
    assert submit_job("/bin/echo second", submission_id="sub-1") == second == "sub-1"
    assert wait_for_all_jobs([first, second], check_interval=0.2, timeout=60) is True
    assert get_job_status(first) == "SUCCEEDED"
    info = get_job_info(first)
    record = info["mirror"]
    assert (info["submission_id"], record["ncpus"], record["rid"]) == (first, 2, 1)
    assert info["logs"] == f"hello 3\n{autorun_mesh.shared}\n"
    assert default.logs(info["mirror_job_id"])["stdout"] == info["stdout"]
    assert get_job_info(second)["logs"] == "second\n"


def test_ctrl_c_stops_every_job_the_decorated_function_submitted(default, autorun_mesh, tmp_path):
    outside = submit_job("/bin/sleep 60")  # not submitted by the decorated function
    script = tmp_path / "workflow.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys

            from services.client import (
                configure, graceful_shutdown_on_keyboard_interrupt, submit_job, wait_for_all_jobs,
            )

            configure(sys.argv[1])


            @graceful_shutdown_on_keyboard_interrupt
            def workflow():
                ids = [submit_job("sleep 60", job_id=f"long-{i}") for i in range(3)]
                print(" ".join(ids), flush=True)
                wait_for_all_jobs(ids, check_interval=0.2)


            try:
                workflow()
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                sys.exit(130)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script), str(autorun_mesh.config_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ids = proc.stdout.readline().split()
        assert len(ids) == 3, proc.stderr.read()
        jobs = [mirror_client.get_unified_scheduler().resolve(i) for i in ids]
        for job_id in jobs:
            autorun_mesh.wait_state(job_id, "RUNNING", timeout=30)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert out == "interrupted\n"
    assert f"stopping 3 job(s) submitted here: {', '.join(ids)}" in err
    for job_id in jobs:
        assert autorun_mesh.wait_state(job_id, FINAL, timeout=30)["state"] == "KILLED"
    assert get_job_status(outside) == "RUNNING"
    assert stop_job(outside) is True


def test_the_decorator_leaves_other_errors_alone(default):
    @graceful_shutdown_on_keyboard_interrupt
    def fails():
        submit_job("/bin/true")
        raise ValueError("not an interrupt")

    with pytest.raises(ValueError, match="not an interrupt"):
        fails()
    assert mirror_client._trackers == []


def test_a_directory_is_zipped_as_a_package(client, tmp_path):
    folder = tmp_path / "pkg"
    folder.mkdir()
    with zipfile.ZipFile(io.BytesIO(package_zip("trivial"))) as archive:
        archive.extractall(folder)
    c_id = client.add_package(folder)
    assert next(c for c in client.packages() if c["c_id"] == c_id)["name"] == "pkg"
