"""The Slurm-style REST API (SPEC 8) on a real mesh, checked against seeds 000 and 002.

One mesh (``autorun_mesh``): central services, the gateway and one autorun
agent (rid 1, named ``alpha``, 8 slots) that allows scripts under ``shared/``.
"""

import json
import re
import socket

import eventlet
import pytest
import requests
from nameko.runners import ServiceRunner

from gateway import GatewayService
from tests.integration.rest_client import (
    SeedClient,
    assert_error,
    cancel,
    payload,
    query,
    submit,
    submit_ok,
    wait_rest,
)
from tests.mesh import wait_for

UTC_SECOND = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ELAPSED = re.compile(r"\d+-\d\d:\d\d:\d\d")
TOKEN = "rest-s3cret"
SMALL_BODY = 2048


@pytest.fixture(scope="module")
def locked_url(autorun_mesh):
    """A second gateway on the same mesh, in this process, with a token and a small body cap."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = {
        **autorun_mesh.rpc_config,
        "GATEWAY": {"address": f"127.0.0.1:{port}", "tokens": [TOKEN], "max_body": SMALL_BODY},
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
    }
    runner = ServiceRunner(config)
    runner.add_service(GatewayService)
    runner.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        try:
            with eventlet.Timeout(10):
                runner.stop()
        except eventlet.Timeout:
            runner.kill()


def test_submit_answers_the_job_id_as_a_string(autorun_mesh):
    response = submit(autorun_mesh, payload(autorun_mesh))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["job_id"]
    assert isinstance(body["job_id"], str) and body["job_id"].isdigit()
    assert wait_rest(autorun_mesh, body["job_id"])["state"] == "COMPLETED"


def test_query_answers_the_seed_shape_field_by_field(autorun_mesh):
    body = payload(
        autorun_mesh,
        script='#!/bin/bash\necho "Hello World"\necho "to stderr" >&2\n',
        cpus_per_task=2,
        name="shape_job",
    )
    job_id = submit_ok(autorun_mesh, body)
    job = wait_rest(autorun_mesh, job_id)
    assert list(job) == ["job_id", "state", "error_msg", "time", "job_log", "detail"]
    assert job["job_id"] == job_id
    assert job["state"] == "COMPLETED"
    assert job["error_msg"] is None

    times = job["time"]
    assert list(times) == [
        "submit_time",
        "start_time",
        "end_time",
        "eligible_time",
        "elapsed_time",
        "limit_time",
    ]
    for key in ("submit_time", "start_time", "end_time", "eligible_time"):
        assert UTC_SECOND.fullmatch(times[key]), times
    assert times["eligible_time"] == times["submit_time"]
    assert times["submit_time"] <= times["start_time"] <= times["end_time"]
    assert ELAPSED.fullmatch(times["elapsed_time"]), times
    assert times["elapsed_time"].startswith("0-00:00:")
    assert times["limit_time"] == "30:00"

    assert job["job_log"] == {"stdout": "Hello World\n", "stderr": "to stderr\n"}
    assert job["detail"] == {
        "job_name": "shape_job",
        "user": "project_alpha",
        "partition": "default",
        "allocated_cpus": 2,
        "allocated_nodes": 1,
        "node_list": "alpha",
        "exit_code": "0:0",
        "work_dir": str(autorun_mesh.shared),
        "data_source": "API",
        "account": "project_alpha",
    }
    # The output files are where the request put them (%j is the job id).
    assert (autorun_mesh.shared / f"output-{job_id}.log").read_text() == "Hello World\n"
    assert (autorun_mesh.shared / f"error-{job_id}.log").read_text() == "to stderr\n"
    # The fields Mirror does not act on are kept with the job.
    meta = autorun_mesh.ok("job", "query", job_id=int(job_id))["metadata"]
    assert meta["memory_per_node"] == "1G" and meta["exclusive"] is False
    assert meta["ntasks_per_node"] == 1 and meta["partition"] == "default"


def test_a_minimal_submission_uses_the_job_directory(autorun_mesh):
    job_id = submit_ok(autorun_mesh, {"job": {}, "script": "echo minimal $HOME_IS_SET"})
    job = wait_rest(autorun_mesh, job_id)
    assert job["state"] == "COMPLETED", job
    assert job["job_log"]["stdout"] == "minimal\n"
    detail = job["detail"]
    # Like Slurm's default (the script's name): the step of a script job is "script".
    assert detail["job_name"] == "script" and detail["user"] is None and detail["account"] is None
    assert detail["partition"] == "default" and detail["allocated_cpus"] == 1
    assert detail["work_dir"].startswith(autorun_mesh.config["DATA_DIR"])
    assert job["time"]["limit_time"] == "UNLIMITED"


def test_environment_is_given_and_the_time_limit_kills(autorun_mesh):
    body = payload(
        autorun_mesh,
        script="echo $GREETING $COUNT; sleep 30",
        environment={"GREETING": "hello", "COUNT": 3},
        time_limit=0.05,  # three seconds
    )
    job_id = submit_ok(autorun_mesh, body)
    job = wait_rest(autorun_mesh, job_id, timeout=30)
    assert job["state"] == "FAILED", job
    assert "time limit" in job["error_msg"]
    assert job["time"]["limit_time"] == "0:03"
    assert job["job_log"]["stdout"] == "hello 3\n"


def test_stdout_is_visible_while_the_job_runs(autorun_mesh):
    job_id = submit_ok(
        autorun_mesh, payload(autorun_mesh, script="echo first; sleep 3; echo second")
    )
    running = wait_for(
        lambda: (job := query(autorun_mesh, job_id))["job_log"]["stdout"] == "first\n" and job,
        15,
        what="the first line while running",
    )
    assert running["state"] == "RUNNING"
    assert running["time"]["end_time"] is None
    assert running["detail"]["exit_code"] == ":"
    job = wait_rest(autorun_mesh, job_id)
    assert job["state"] == "COMPLETED"
    assert job["job_log"]["stdout"] == "first\nsecond\n"
    assert job["time"]["elapsed_time"] >= "0-00:00:03"


def test_a_failing_script_reports_its_exit_code(autorun_mesh):
    job_id = submit_ok(autorun_mesh, payload(autorun_mesh, script="echo broken >&2; exit 3"))
    job = wait_rest(autorun_mesh, job_id)
    assert job["state"] == "FAILED"
    assert job["detail"]["exit_code"] == "3:0"
    assert "exited with code 3" in job["error_msg"]
    assert job["job_log"]["stderr"] == "broken\n"


# -- cancel --------------------------------------------------------------------------------


def test_cancel_a_running_job(autorun_mesh):
    job_id = submit_ok(autorun_mesh, payload(autorun_mesh, script="sleep 60"))
    wait_rest(autorun_mesh, job_id, "RUNNING")
    response = cancel(autorun_mesh, job_id)
    assert response.status_code == 200, response.text
    assert response.json() == {"msg": "取消成功"}
    assert response.content.decode("utf-8") == '{"msg":"取消成功"}'
    job = wait_rest(autorun_mesh, job_id)
    assert job["state"] == "CANCELLED"
    assert job["error_msg"] and job["time"]["end_time"]
    # Cancelling again changes nothing and still succeeds (the seed's service is idempotent).
    response = cancel(autorun_mesh, job_id)
    assert response.status_code == 200 and response.json() == {"msg": "取消成功"}
    assert query(autorun_mesh, job_id)["state"] == "CANCELLED"


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object"),
        (b"", "request body is empty"),
        (b'{"job": {}}', "missing field: script"),
        (b'{"script": "true"}', "missing field: job"),
        (b'{"job": [], "script": "true"}', "job must be an object"),
        (b'{"job": {}, "script": 5}', "script must be a string"),
        (b'{"job": {}, "script": "  "}', "script must not be empty"),
    ],
)
def test_malformed_bodies_are_400(autorun_mesh, data, fragment):
    response = requests.post(f"{autorun_mesh.base_url}/jobs/submit", data=data, timeout=30)
    assert_error(response, 400, fragment)


@pytest.mark.parametrize(
    ("job", "fragment"),
    [
        ({"cpus_per_task": "many"}, "job.cpus_per_task must be a positive integer"),
        ({"cpus_per_task": 0}, "job.cpus_per_task must be a positive integer"),
        ({"cpus_per_task": True}, "job.cpus_per_task must be a positive integer"),
        ({"ntasks_per_node": -1}, "job.ntasks_per_node must be a positive integer"),
        ({"time_limit": "soon"}, "job.time_limit must be minutes"),
        ({"time_limit": 0}, "job.time_limit must be a positive time"),
        ({"environment": ["A=1"]}, "job.environment must be an object"),
        ({"environment": {"A": {"x": 1}}}, "job.environment.A must be a string"),
        ({"environment": {"BAD-NAME": "x"}}, "environment variable name 'BAD-NAME' is not valid"),
        ({"name": 7}, "job.name must be a string"),
        ({"exclusive": "yes"}, "job.exclusive must be true or false"),
        ({"current_working_directory": 5}, "job.current_working_directory must be a string"),
        (
            {"current_working_directory": "/etc"},
            "current_working_directory '/etc' is outside the allowed roots",
        ),
        (
            {"current_working_directory": "relative/dir"},
            "current_working_directory must be an absolute path",
        ),
        ({"standard_output": "/etc/x.out"}, "standard_output '/etc/x.out' is outside"),
    ],
)
def test_bad_job_fields_are_400_naming_the_field(autorun_mesh, job, fragment):
    body = payload(autorun_mesh)
    body["job"].update(job)
    assert_error(submit(autorun_mesh, body), 400, fragment)


def test_unknown_jobs_are_404(autorun_mesh):
    for response in (
        requests.get(f"{autorun_mesh.base_url}/jobs/query/999999", timeout=30),
        cancel(autorun_mesh, 999999),
    ):
        assert_error(response, 404, "job is not existed , job : 999999")
    assert_error(
        requests.get(f"{autorun_mesh.base_url}/jobs/query/{10**20}", timeout=30), 404, "not existed"
    )
    assert_error(
        requests.get(f"{autorun_mesh.base_url}/jobs/query/abc", timeout=30), 400, "job_id must be"
    )
    assert_error(cancel(autorun_mesh, "-1"), 400, "job_id must be a positive integer")


def test_wrong_methods_are_json_405(autorun_mesh):
    response = requests.get(f"{autorun_mesh.base_url}/jobs/submit", timeout=30)
    assert_error(response, 405, "method GET not allowed on /jobs/submit")
    assert response.headers["Allow"] == "POST"
    assert_error(
        requests.post(f"{autorun_mesh.base_url}/jobs/query/1", timeout=30), 405, "not allowed"
    )
    assert_error(
        requests.get(f"{autorun_mesh.base_url}/jobs/cancel/1", timeout=30), 405, "not allowed"
    )
    assert_error(requests.delete(f"{autorun_mesh.base_url}/health", timeout=30), 405, "not allowed")
    # A path near the REST routes that none serves is the gateway's own JSON 404.
    response = requests.get(f"{autorun_mesh.base_url}/jobs/query/", timeout=30)
    assert response.status_code == 404 and json.loads(response.text)[0] == -1


def test_tokens_and_the_body_cap(locked_url, autorun_mesh):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        for response in (
            requests.get(f"{locked_url}/health", headers=headers, timeout=30),
            requests.get(f"{locked_url}/jobs/query/1", headers=headers, timeout=30),
            requests.post(f"{locked_url}/jobs/cancel/1", headers=headers, timeout=30),
            submit(autorun_mesh, payload(autorun_mesh), url=locked_url, headers=headers),
        ):
            assert_error(response, 401, "missing or wrong bearer token")
            assert response.headers["WWW-Authenticate"] == "Bearer"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = submit(
        autorun_mesh, payload(autorun_mesh, script="echo locked"), url=locked_url, headers=auth
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    assert wait_rest(autorun_mesh, job_id)["job_log"]["stdout"] == "locked\n"
    big = payload(autorun_mesh, script="echo " + "x" * SMALL_BODY)
    assert_error(submit(autorun_mesh, big, url=locked_url, headers=auth), 413, "larger than")


def test_health_reports_broker_database_and_machines(autorun_mesh):
    response = requests.get(f"{autorun_mesh.base_url}/health", timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["broker"] == {"ok": True, "error": None}
    assert body["database"] == {"ok": True, "error": None}
    machines = body["machines"]
    assert (machines["online"], machines["total"]) == (1, 1)
    (machine,) = machines["list"]
    assert machine["rid"] == 1 and machine["name"] == "alpha" and machine["online"]
    assert set(machine) >= {"slots", "running", "used_cores", "queued", "last_heartbeat"}


# -- a client written from seed 000's Python example ---------------------------------------


def test_the_seed_client_runs_unchanged(autorun_mesh):
    client = SeedClient(autorun_mesh.base_url)
    script = '#!/bin/bash\necho "Starting job"\necho "warn" >&2\necho "Job completed"\n'
    job_id = client.submit_job(
        script=script,
        name="test_job",
        account="my_project",
        work_dir=str(autorun_mesh.shared),
        cpus=2,
        time_limit="5",
    )
    assert client.wait_for_job(job_id, timeout=30) == "COMPLETED"
    assert client.get_job_output(job_id) == ("Starting job\nJob completed\n", "warn\n")
    assert (autorun_mesh.shared / "test_job.out").read_text() == "Starting job\nJob completed\n"

    # Scenario 1: a batch, all followed to the end (scenario 2's counting included).
    job_ids = [
        client.submit_job(
            script=f'#!/bin/bash\necho "Processing {name}"\n',
            name=f"process_{name}",
            account="batch_project",
            work_dir=str(autorun_mesh.shared),
            cpus=1,
            time_limit="30",
            environment={"OMP_NUM_THREADS": "1"},
        )
        for name in ("data001.csv", "data002.csv", "data003.csv")
    ]
    assert len(set(job_ids)) == 3
    summary = dict.fromkeys(["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"], 0)
    for job_id in job_ids:
        summary[client.wait_for_job(job_id, timeout=30)] += 1
    assert summary["COMPLETED"] == 3
    assert client.get_job_output(job_ids[1])[0] == "Processing data002.csv\n"

    # Cancel, then the seed's error handling: 404, 400 with a JSON body.
    job_id = client.submit_job("sleep 60", "long", "acct", str(autorun_mesh.shared))
    wait_rest(autorun_mesh, str(job_id), "RUNNING")
    client.cancel_job(job_id)
    assert client.wait_for_job(job_id, timeout=30) == "CANCELLED"
    with pytest.raises(requests.HTTPError) as info:
        client.query_job(987654)
    assert info.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as info:
        client.submit_job("true", "bad", "acct", "/nowhere/allowed")
    assert info.value.response.status_code == 400
    assert "outside the allowed roots" in info.value.response.json()["detail"]


# -- a job that waits: no machine online ----------------------------------------------------


def test_a_pending_job_is_cancelled_in_place(autorun_mesh):
    autorun_mesh.stop("agent1")
    try:
        wait_for(lambda: not autorun_mesh.machine(1)["online"], 20, what="machine 1 offline")
        health = requests.get(f"{autorun_mesh.base_url}/health", timeout=30)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["machines"]["online"] == 0

        job_id = submit_ok(autorun_mesh, payload(autorun_mesh, script="echo never"))
        job = query(autorun_mesh, job_id)
        assert job["state"] == "PENDING"
        assert job["time"]["start_time"] is None and job["time"]["elapsed_time"] == "0-00:00:00"
        assert job["detail"]["node_list"] == "" and job["detail"]["exit_code"] == ":"
        assert job["job_log"] == {"stdout": "", "stderr": ""}

        response = cancel(autorun_mesh, job_id)
        assert response.status_code == 200 and response.json() == {"msg": "取消成功"}
        job = query(autorun_mesh, job_id)
        assert job["state"] == "CANCELLED" and job["error_msg"] == "cancelled by user"
        assert job["time"]["end_time"] is not None
    finally:
        # The tests after this one find the machine as the fixture left it.
        autorun_mesh.start_agent_again(1)
