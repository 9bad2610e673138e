"""The agent's stage functions against fakes of central and the file server, with real processes.

Each test lays out a job of the bundled ``trivial`` package (or one like it)
in a tmp work root, runs the stages a machine runs, and checks what reached
the fake central: the reports, their order, what each expected.
"""

import copy
import hashlib
import io
import zipfile

import pytest

from adapters.bundled import BUNDLED_DIR, package_zip, project_files
from services.agent import processes, stages
from services.agent.runtime import AgentRuntime
from services.agent.steprun import finish_step, launch_step, reattach
from services.common.errors import MirrorError
from services.common.jobstates import STEP_RESET, apply_changes

RID = 1
TRIVIAL = (BUNDLED_DIR / "trivial" / "package" / "adapter.xml").read_text()
STEPS = '<ExeArgument id="prepare" type="exec" value="true" priority="1"/>'


class FakeCentral:
    """The calls an agent makes to central, on one job record; every call is recorded."""

    def __init__(self, job):
        self.job = copy.deepcopy(job)
        self.calls = []
        self.refuse = None

    def fetch(self, job_id):
        self.calls.append(("fetch", job_id))
        return copy.deepcopy(self.job)

    def report(self, job_id, rid, changes, expect=None):
        self.calls.append(("report", copy.deepcopy(changes), expect))
        state = self.job["state"]
        if self.refuse or (expect and state not in expect):
            raise MirrorError(f"job {job_id} is {self.refuse or state}, expected {expect}")
        apply_changes(self.job, changes)
        return {k: v for k, v in self.job.items() if k not in ("package", "project_files")}

    def call(self, service, method, **kwargs):
        self.calls.append((f"{service}.{method}", kwargs))
        return []

    def reports(self):
        return [call[1:] for call in self.calls if call[0] == "report"]

    def close(self):
        pass


class FakeFiles:
    """The file server: downloads from a dict, uploads recorded."""

    def __init__(self, served):
        self.served = served
        self.uploaded = {}

    def download(self, remote, local):
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(self.served[remote])

    def upload(self, local, remote):
        self.uploaded[remote] = local.read_bytes()

    def url(self, remote):
        return f"ftp://files{remote}"

    def delete_tree(self, remote):
        self.uploaded = {k: v for k, v in self.uploaded.items() if not k.startswith(remote)}

    def close(self):
        pass


def make_zip(adapter_xml):
    """The trivial package with ``adapter_xml`` in place of its own."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(package_zip("trivial"))) as src,
        zipfile.ZipFile(out, "w") as zf,
    ):
        for info in src.infolist():
            data = src.read(info)
            zf.writestr(info, adapter_xml.encode() if info.filename == "adapter.xml" else data)
    return out.getvalue()


def make_job(adapter_xml=TRIVIAL):
    """``(job bundle as claimed, files served)`` of a trivial job with ``adapter_xml``."""
    data = make_zip(adapter_xml)
    served = {"/packages/3.zip": data}
    entries = []
    for name, content in project_files("trivial").items():
        digest = hashlib.sha256(content).hexdigest()
        served[f"/projects/1/{name}"] = content
        entries.append({"name": name, "sha256": digest, "ftp_path": f"/projects/1/{name}"})
    step_ids = [part.split('"')[1] for part in adapter_xml.split("<ExeArgument id=")[1:]]
    job = {
        "job_id": 5,
        "rid": RID,
        "state": "PREPARING",
        "attempts": 1,
        "path": None,
        "step": None,
        "pid": None,
        "pid_start": None,
        "error": None,
        "ncpus": 1,
        "params": {"NCPUS": 1, "x": 2},
        "steps": [{"id": s, **STEP_RESET} for s in step_ids],
        "p_id": 1,
        "package": {
            "c_id": 3,
            "sha256": hashlib.sha256(data).hexdigest(),
            "ftp_path": "/packages/3.zip",
            "adapter_xml": adapter_xml,
        },
        "project_files": entries,
    }
    return job, served


@pytest.fixture
def machine(tmp_path):
    """``start(job, served)``: a runtime of machine 1 over fakes, closed at the end."""
    made = []

    def start(job, served):
        config = {
            "AMQP_URI": "memory://",
            "rpc_exchange": "nameko-rpc",
            "AGENT": {
                "rid": RID,
                "name": "m1",
                "slots": 2,
                "work_root": str(tmp_path / "work"),
                "heartbeat": 1,
                "kill_grace": 1,
            },
            "DEBUG": {"autorun_job": False},
            "MONITOR": {"interval": 0.2},
        }
        rt = AgentRuntime(config, central=FakeCentral(job), files=FakeFiles(served))
        made.append(rt)
        return rt

    yield start
    for rt in made:
        for running in list(rt.running.values()):
            processes.kill_tree(running.pid, running.started, running.token, 0.5)
        rt.close()


def run_to_end(rt, job, *, autorun=False):
    """Launch the next step, wait for its process, record its end."""
    running = launch_step(rt, job, defer_report=autorun)
    ended, code = processes.wait_exit(running.pid, timeout=30)
    assert ended
    rt.running.pop(job["job_id"], None)
    return finish_step(rt, job, running, code, autorun=autorun)


def prepared(rt, job, *, defer=False):
    stages.build_directory(rt, job, defer=defer)
    stages.build_files(rt, job, defer=defer)
    return job


def test_manual_stages_report_each_state_in_turn(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    for _ in job["steps"]:
        run_to_end(rt, job)
    stages.recover(rt, job)

    states = [(changes.get("state"), expect) for changes, expect in rt.central.reports()]
    assert states[:2] == [("PREPARING", ["PREPARING"]), ("READY", ["PREPARING", "READY"])]
    assert states[2:8] == [("RUNNING", ["READY"]), ("READY", ["RUNNING"])] * 3
    assert states[8:] == [("COMPLETED", ["READY"])]
    record = rt.central.job
    assert record["state"] == "COMPLETED"
    assert [(s["state"], s["exit_code"]) for s in record["steps"]] == [("DONE", 0)] * 3
    assert record["result"] == {"result": "ftp://files/jobs/5/result/result/result.txt"}
    assert rt.files.uploaded["/jobs/5/result/result/result.txt"] == b"x = 2\n"


def test_a_repeated_stage_does_nothing(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    sent = len(rt.central.calls)
    stages.build_directory(rt, job)
    assert len(rt.central.calls) == sent
    assert rt.workspace.job_dirs(5) == [rt.workspace.root / "job5"]
    for _ in job["steps"]:
        run_to_end(rt, job)
    stages.recover(rt, job)
    sent = len(rt.central.calls)
    assert stages.recover(rt, job)["state"] == "COMPLETED"
    assert len(rt.central.calls) == sent


def test_autorun_stages_send_one_report_for_the_whole_job(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job, defer=True)
    for _ in job["steps"]:
        run_to_end(rt, job, autorun=True)
    assert rt.central.calls == []
    assert (rt.workspace.root / "job5" / ".mirror" / "pending.json").stat().st_size > 0

    stages.recover(rt, job)

    ((changes, expect),) = rt.central.reports()
    assert expect == ["PREPARING"] and changes["state"] == "COMPLETED"
    assert set(changes["steps"]) == {"prepare", "compute", "finish"}
    assert rt.central.job["state"] == "COMPLETED"
    assert (rt.workspace.root / "job5" / ".mirror" / "pending.json").read_text() == ""


def test_a_refused_running_report_stops_the_step_it_started(machine):
    job, served = make_job(TRIVIAL.replace(STEPS, STEPS.replace('"true"', '"sleep 30"')))
    rt = machine(job, served)
    prepared(rt, job)
    rt.central.refuse = "KILLED"

    with pytest.raises(MirrorError, match="is KILLED"):
        launch_step(rt, job)

    assert rt.running == {}
    (changes, _), *_ = reversed(rt.central.reports())
    assert changes["state"] == "RUNNING" and changes["pid"]
    assert not processes.alive(changes["pid"], changes["pid_start"])


def test_a_failing_step_fails_the_job_with_its_last_stderr_line(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    run_to_end(rt, job)
    (rt.workspace.root / "job5" / "input.txt").unlink()

    run_to_end(rt, job)

    changes, expect = rt.central.reports()[-1]
    assert changes["state"] == "FAILED" and expect == ["PREPARING", "READY", "RUNNING"]
    assert changes["error"].startswith("step compute exited with code 1: cp: ")
    assert "input.txt" in changes["error"]
    assert changes["steps"]["compute"]["exit_code"] == 1


def test_recover_fails_a_job_whose_result_is_missing(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    for _ in job["steps"]:
        run_to_end(rt, job)
    (rt.workspace.root / "job5" / "result.txt").unlink()

    stages.recover(rt, job)

    assert rt.central.job["state"] == "FAILED"
    assert rt.central.job["error"] == "results not produced: result (result.txt)"


def test_recover_refuses_a_job_with_steps_left(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    with pytest.raises(MirrorError, match="steps not done yet: prepare, compute, finish"):
        stages.recover(rt, job)


def test_a_restarted_agent_learns_a_step_end_from_the_ledger(machine):
    job, served = make_job()
    first = machine(job, served)
    prepared(first, job)
    running = launch_step(first, job)
    assert processes.wait_exit(running.pid, timeout=30)[0]
    # The agent died before it saw the end: central still says RUNNING.
    again = machine(first.central.job, served)
    record = stages.fetch(again, 5)

    found = reattach(again, record)
    finish_step(again, record, found, None)

    assert (found.pid, found.token) == (None, running.token)
    assert again.central.job["state"] == "READY"
    assert again.central.job["steps"][0]["exit_code"] == 0


def test_a_restarted_agent_finds_a_live_step_and_can_kill_it(machine):
    job, served = make_job(TRIVIAL.replace(STEPS, STEPS.replace('"true"', '"sleep 30"')))
    first = machine(job, served)
    prepared(first, job)
    running = launch_step(first, job)
    first.running.clear()
    again = machine(first.central.job, served)
    record = stages.fetch(again, 5)

    found = reattach(again, record)
    assert (found.pid, found.token) == (running.pid, running.token)
    stages.kill(again, record)

    assert again.central.job["state"] == "KILLED"
    assert not processes.alive(running.pid, running.started)
    processes.wait_exit(running.pid, timeout=5)  # reap our own child
