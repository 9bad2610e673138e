"""Slurm-style answers from ``job.query`` records and ``machine.list``."""

from datetime import UTC, datetime

import pytest

from gateway.formatting import (
    STATES,
    exit_code,
    format_elapsed,
    format_limit,
    health_report,
    job_response,
    utc_text,
)
from services.common import jobstates


def test_every_mirror_state_has_a_rest_state():
    assert set(STATES) == set(jobstates.STATES)
    assert set(STATES.values()) == {"PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"}


@pytest.mark.parametrize(
    ("minutes", "shown"),
    [
        (None, "UNLIMITED"),
        (0.05, "0:03"),
        (5, "5:00"),
        (30, "30:00"),
        (120, "2:00:00"),
        (1440, "1-00:00:00"),
        (1441.5, "1-00:01:30"),
    ],
)
def test_format_limit(minutes, shown):
    assert format_limit(minutes) == shown


def test_format_elapsed():
    assert format_elapsed(0) == "0-00:00:00"
    assert format_elapsed(-3) == "0-00:00:00"
    assert format_elapsed(320.9) == "0-00:05:20"
    assert format_elapsed(2 * 86400 + 3661) == "2-01:01:01"


def test_utc_text():
    assert utc_text(None) is None
    assert utc_text("2025-11-07T10:20:30.999") == "2025-11-07T10:20:30Z"
    assert utc_text("2025-11-07T12:20:30+02:00") == "2025-11-07T10:20:30Z"


def test_exit_code_of_the_jobs_step():
    steps = [{"id": "a", "exit_code": 0}, {"id": "b", "exit_code": 3}]
    assert exit_code({"steps": steps, "step": "a"}) == "0:0"
    assert exit_code({"steps": steps, "step": None}) == "3:0"
    assert exit_code({"steps": [{"id": "a", "exit_code": -9}], "step": "a"}) == "0:9"
    assert exit_code({"steps": [{"id": "a", "exit_code": None}], "step": "a"}) == ":"
    assert exit_code({}) == ":"


def test_job_response_of_a_finished_job():
    job = {
        "job_id": 7,
        "state": jobstates.KILLED,
        "error": "cancelled by user",
        "submit_time": "2025-11-07T10:20:00+00:00",
        "start_time": "2025-11-07T10:20:30+00:00",
        "end_time": "2025-11-07T10:25:50+00:00",
        "time_limit": 30,
        "name": "n",
        "ncpus": 2,
        "workdir": "/w",
        "path": "/p",
        "steps": [{"id": "script", "exit_code": None}],
        "step": "script",
        "metadata": {"account": "acct", "data_source": "API"},
    }
    logs = {"stdout": "out", "stderr": ""}
    assert job_response(job, logs, "node-1") == {
        "job_id": "7",
        "state": "CANCELLED",
        "error_msg": "cancelled by user",
        "time": {
            "submit_time": "2025-11-07T10:20:00Z",
            "start_time": "2025-11-07T10:20:30Z",
            "end_time": "2025-11-07T10:25:50Z",
            "eligible_time": "2025-11-07T10:20:00Z",
            "elapsed_time": "0-00:05:20",
            "limit_time": "30:00",
        },
        "job_log": {"stdout": "out", "stderr": ""},
        "detail": {
            "job_name": "n",
            "user": "acct",
            "partition": "default",
            "allocated_cpus": 2,
            "allocated_nodes": 1,
            "node_list": "node-1",
            "exit_code": ":",
            "work_dir": "/w",
            "data_source": "API",
            "account": "acct",
        },
    }


def test_a_job_of_a_slurm_machine_shows_its_batch_job():
    job = {
        "job_id": 3,
        "state": jobstates.RUNNING,
        "metadata": {"partition": "asked"},
        "slurm": {"job_id": 1234, "nodelist": "node07", "partition": "work", "step": "s"},
    }
    detail = job_response(job, node="login-1")["detail"]
    assert detail["slurm_job_id"] == "1234"
    assert (detail["partition"], detail["node_list"]) == ("work", "node07")
    # Not placed by Slurm yet: the machine's name, as for any job.
    job["slurm"] = {"job_id": 1235, "nodelist": "", "partition": "", "step": "s"}
    detail = job_response(job, node="login-1")["detail"]
    assert (detail["partition"], detail["node_list"]) == ("asked", "login-1")


def test_a_running_job_counts_elapsed_time_to_now():
    job = {"job_id": 1, "state": jobstates.READY, "start_time": "2025-11-07T10:00:00+00:00"}
    now = datetime(2025, 11, 7, 10, 1, 5, tzinfo=UTC)
    answer = job_response(job, now=now)
    assert answer["state"] == "RUNNING" and answer["time"]["elapsed_time"] == "0-00:01:05"
    assert answer["time"]["end_time"] is None and answer["job_log"] == {"stdout": "", "stderr": ""}


def test_health_report():
    machines = [{"rid": 1, "name": "a", "online": True, "extra": 1}, {"rid": 2, "online": False}]
    status, body = health_report(machines)
    assert status == 200 and body["status"] == "ok"
    assert body["machines"]["online"] == 1 and body["machines"]["total"] == 2
    assert "extra" not in body["machines"]["list"][0]
    assert health_report([])[1]["status"] == "degraded"
    status, body = health_report(error=("broker", "down"))
    assert status == 503 and body["broker"] == {"ok": False, "error": "down"}
    assert body["database"]["error"] == "not checked: central services not reached"
    status, body = health_report(error=("database", "locked"))
    assert status == 503 and body["broker"]["ok"] and body["database"]["error"] == "locked"
