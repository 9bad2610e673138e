"""The machine API's pieces without a mesh: jobconf, scripts, answers in Slurm's columns, sessions."""

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import BadRequest
from gateway.newt_format import job_columns, overview, queue_columns, sacct_time, tasks_of
from gateway.newt_parse import (
    area_of,
    batch_script,
    command_script,
    heredoc,
    job_id_of,
    machine_path,
    parse_jobconf,
)
from gateway.sessions import SessionStore
from services.common.identity import Identity

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def ago(seconds):
    return (NOW - timedelta(seconds=seconds)).isoformat()


# -- jobconf and paths ----------------------------------------------------------------------


def test_jobconf_from_a_json_string_or_an_object():
    text = json.dumps({"job_name": "hello", "time_limit": 10, "scale_cores": "2", "x": 1})
    assert parse_jobconf(text) == {"job_name": "hello", "time_limit": 10, "scale_cores": 2}
    assert parse_jobconf({"time_limit": "1:30:00", "scale_memGB": "4"}) == {
        "time_limit": 90,
        "scale_memGB": 4,
    }
    assert parse_jobconf({"jobfile_args": ["a", "b c"]}) == {"jobfile_args": "a 'b c'"}
    assert parse_jobconf("") == parse_jobconf(None) == {}


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ("[1]", "jobconf must be a JSON object"),
        ("{", "jobconf is not valid JSON"),
        ({"scale_Nodes": 0}, "jobconf.scale_Nodes must be a positive integer, got 0"),
        ({"scale_memGB": "lots"}, "jobconf.scale_memGB must be a positive number, got 'lots'"),
        ({"time_limit": "soon"}, "jobconf.time_limit must be minutes or a Slurm time"),
        ({"job_name": 5}, "jobconf.job_name must be text, got 5"),
    ],
)
def test_jobconf_refusals(conf, message):
    with pytest.raises(BadRequest) as caught:
        parse_jobconf(conf)
    assert caught.value.message.startswith(message)


def test_paths_stay_inside_the_machine_roots():
    roots = ["/w/rid1", "/shared"]
    area = area_of({"name": "alpha", "roots": roots}, "ann")
    assert area == "/w/rid1/users/ann/newt"
    assert machine_path("job.sh", area, roots, "jobfilepath") == f"{area}/job.sh"
    assert machine_path("/shared/x/job.sh", area, roots, "f") == "/shared/x/job.sh"
    for escape in ("../../../../etc/passwd", "/etc/passwd", "/sharedness/x"):
        with pytest.raises(BadRequest, match="outside the allowed roots"):
            machine_path(escape, area, roots, "jobfile")
    with pytest.raises(BadRequest, match="has not told its work root"):
        area_of({"name": "alpha", "roots": []}, "ann")


def test_job_ids():
    assert job_id_of("42") == 42
    for bad in ("", None, "4x", "-1", "٤"):
        with pytest.raises(BadRequest):
            job_id_of(bad)


# -- the scripts, run by a real shell ---------------------------------------------------------


def run(script, cwd):
    return subprocess.run(["/bin/sh", "-c", script], cwd=cwd, capture_output=True, text=True)


def test_command_runs_in_the_callers_directory(tmp_path):
    area = tmp_path / "users" / "ann" / "newt"
    done = run(command_script("pwd; exit 4", str(area)), tmp_path)
    assert (done.stdout, done.returncode) == (f"{area}\n", 4)


@pytest.mark.parametrize("text", ["echo one\n", "echo 'no newline'", "x <<'EOF'\nEOF\n$HOME `a`"])
def test_heredoc_writes_the_text_exactly(tmp_path, text):
    path = tmp_path / "s.sh"
    assert run(heredoc(str(path), text), tmp_path).returncode == 0
    assert path.read_text() == text


def test_batch_script_writes_and_runs_with_args(tmp_path):
    path = str(tmp_path / "deep" / "job.sh")
    conf = {"jobfile_args": "a 'b c'"}
    script = '#!/bin/sh\necho "$# $2"; pwd\n'
    done = run(batch_script(conf, path, script), "/")
    assert done.stdout == f"2 b c\n{tmp_path}/deep\n", done.stderr
    # An existing script without #! is read by /bin/sh; with a working directory
    # (the job's cwd, where Mirror starts it) it stays there, not in the script's.
    plain = tmp_path / "plain.sh"
    plain.write_text("pwd\n")
    done = run(batch_script({}, str(plain), None, wdir=str(tmp_path / "deep")), tmp_path / "deep")
    assert done.stdout == f"{tmp_path}/deep\n"


# -- answers --------------------------------------------------------------------------------


def job(**fields):
    base = {
        "job_id": 7,
        "state": "QUEUED",
        "name": "hello",
        "owner": "ann",
        "metadata": {},
        "start_time": None,
        "end_time": None,
        "steps": [{"id": "script", "state": "PENDING", "start_time": None, "exit_code": None}],
    }
    return {**base, **fields}


def test_queue_columns_in_slurm_words():
    jobs = [
        job(),
        job(job_id=8, state="RUNNING", start_time=ago(65), metadata={"partition": "gpu"}),
    ]
    columns = queue_columns(jobs, "alpha", NOW)
    assert columns == {
        "status": {"7": "Pending", "8": "Running"},
        "nodelist": {"7": "(Resources)", "8": "alpha"},
        "name": {"7": "hello", "8": "hello"},
        "partition": {"7": "work", "8": "gpu"},
        "user": {"7": "ann", "8": "ann"},
        "time": {"7": "0:00", "8": "1:05"},
        "nodes": {"7": 1, "8": 1},
        "id": {"7": "7", "8": "8"},
    }


def test_job_columns_with_steps_and_exit_code():
    steps = [{"id": "script", "state": "FAILED", "start_time": ago(9), "exit_code": 3}]
    failed = job(state="FAILED", start_time=ago(90000), end_time=NOW.isoformat(), steps=steps)
    assert job_columns(failed, NOW) == {
        "status": {"7": "Failed"},
        "tasks": {"7": "script FAILED 3:0"},
        "name": {"7": "hello"},
        "partition": {"7": "work"},
        "time": {"7": "1-01:00:00"},
        "nodes": {"7": 1},
        "id": {"7": "7"},
        "exitcode": {"7": "3:0"},
    }
    assert job_columns(job(), NOW)["exitcode"] == {"7": "0:0"}
    assert tasks_of(job()) == ""
    assert sacct_time(job(start_time=ago(61)), NOW) == "00:01:01"


def test_overview_from_heartbeats():
    machines = [
        {"rid": 1, "name": "alpha", "online": True, "slots": 8, "used_cores": 3, "running": 2,
         "queued": 5, "last_heartbeat": ago(2)},
        {"rid": 2, "name": "beta", "online": False, "slots": 4, "used_cores": 0, "running": 0,
         "queued": 0, "last_heartbeat": ago(600)},
    ]  # fmt: skip
    assert overview(machines, {1: 1}, NOW) == {
        "alpha": {
            "queue": {"PD": 5, "R": 2, "time": 2, "health": 0.5},
            "info": {"work": {"idle": 5, "alloc": 3}},
        },
        "beta": {
            "queue": {"PD": 0, "R": 0, "time": 600, "health": 0.0},
            "info": {"work": {"idle": 4, "alloc": 0}},
        },
    }


def test_a_slurm_machine_shows_slurm_ids_nodes_and_its_probe():
    batch = {"job_id": 4242, "nodelist": "node07", "partition": "work", "step": "script"}
    running = job(job_id=8, state="RUNNING", start_time=ago(5), slurm=batch)
    columns = queue_columns([running], "login", NOW)
    assert columns["id"] == {"4242": "4242"} and columns["nodelist"] == {"4242": "node07"}
    assert job_columns(running, NOW)["status"] == {"4242": "Running"}
    probe = {
        "partitions": {"work": {"idle": 6, "alloc": 58, "other": 0, "total": 64}},
        "queue": {"PD": 12, "R": 30},
        "taken": (NOW - timedelta(seconds=4)).timestamp(),
    }
    machines = [
        {"rid": 3, "name": "cluster", "online": True, "slots": 64, "used_cores": 2,
         "running": 1, "queued": 0, "last_heartbeat": ago(1), "slurm": probe},
        # A Slurm machine whose first probe has not come yet: Mirror's own figures.
        {"rid": 4, "name": "fresh", "online": True, "slots": 8, "used_cores": 0,
         "running": 0, "queued": 0, "last_heartbeat": ago(1), "slurm": {}},
    ]  # fmt: skip
    assert overview(machines, {}, NOW) == {
        "cluster": {
            "queue": {"PD": 12, "R": 30, "time": 4, "health": 1.0},
            "info": {"work": {"idle": 6, "alloc": 58}},
        },
        "fresh": {
            "queue": {"PD": 0, "R": 0, "time": 1, "health": 1.0},
            "info": {"work": {"idle": 8, "alloc": 0}},
        },
    }


# -- sessions -------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_sessions_expire_and_are_rechecked():
    clock = Clock()
    store = SessionStore(ttl=60, recheck=10, clock=clock)
    ann = Identity("ann", False)
    sid = store.open(ann)
    assert len(sid) >= 40 and store.open(ann) != sid
    assert store.get(sid) == (ann, False)
    clock.now += 11
    assert store.get(sid) == (ann, True)
    store.checked(sid)
    assert store.get(sid) == (ann, False)
    clock.now += 50
    assert store.get(sid) is None
    assert store.get("forged") is None and store.get(None) is None


def test_sessions_end():
    store = SessionStore()
    sid = store.open(Identity("bob", False))
    assert store.close(sid) is True
    assert store.get(sid) is None and store.close(sid) is False
