"""Fakes of central and the file server, and trivial job bundles, for the agent's unit tests."""

import copy
import hashlib
import io
import zipfile

from adapters.bundled import BUNDLED_DIR, package_zip, project_files
from services.agent import processes, stages
from services.agent.central_client import CentralUnavailable
from services.agent.runtime import AgentRuntime
from services.agent.steprun import finish_step, launch_step
from services.common.errors import MirrorError
from services.common.jobstates import STEP_RESET, apply_changes

RID = 1
TRIVIAL = (BUNDLED_DIR / "trivial" / "package" / "adapter.xml").read_text()
STEPS = '<ExeArgument id="prepare" type="exec" value="true" priority="1"/>'


class FakeCentral:
    """The calls an agent makes to central, on one job record; every call is recorded.

    ``down`` is how many more calls fail as an unreachable central would;
    ``attempts`` numbers the attempts as central does once the job's record has them.
    """

    def __init__(self, job):
        self.job = copy.deepcopy(job)
        self.calls = []
        self.refuse = None
        self.down = 0

    def _reach(self, what):
        if self.down > 0:
            self.down -= 1
            self.calls.append(("unreachable", what))
            raise CentralUnavailable(f"central service job.{what} unreachable after 6 tries")

    def fetch(self, job_id, rid=None):
        self._reach("fetch")
        self.calls.append(("fetch", job_id))
        if rid is not None and self.job["rid"] != rid:
            raise MirrorError(
                f"job {job_id} belongs to resource machine {self.job['rid']}, not {rid}"
            )
        return copy.deepcopy(self.job)

    def report(self, job_id, rid, changes, expect=None, attempt=None, *, retried=False):
        self._reach("report")
        return self._apply(job_id, changes, expect, attempt)

    def _apply(self, job_id, changes, expect, attempt):
        self.calls.append(("report", copy.deepcopy(changes), expect))
        if attempt is not None:
            self.calls[-1] += (attempt,)
        state = self.job["state"]
        if attempt is not None and attempt != self.job["attempts"]:
            raise MirrorError(
                f"job {job_id} attempt {attempt} is superseded by attempt {self.job['attempts']}"
            )
        if self.refuse or (expect and state not in expect):
            raise MirrorError(f"job {job_id} is {self.refuse or state}, expected {expect}")
        apply_changes(self.job, changes)
        return {k: v for k, v in self.job.items() if k not in ("package", "project_files")}

    def batch(self, rid, reports, claim=None, retries=None, *, retried=False):
        self._reach("batch")
        self.calls.append(("batch", len(reports), claim))
        outcomes = []
        for entry in reports:
            try:
                outcomes.append(
                    self._apply(
                        entry["job_id"], entry["changes"], entry["expect"], entry.get("attempt")
                    )
                )
            except MirrorError as exc:
                outcomes.append(exc)
        return outcomes, (None if claim is None else self.claim(claim, rid))

    def claim(self, job_id, rid, *, retried=False):
        self._reach("claim")
        self.calls.append(("claim", job_id))
        if self.job["state"] != "QUEUED":
            raise MirrorError(f"job {job_id} is {self.job['state']}, expected ['QUEUED']")
        self.job.update(state="PREPARING", rid=rid, attempts=self.job["attempts"] + 1)
        return {**copy.deepcopy(self.job), "attempt": self.job["attempts"]}

    def call(self, service, method, **kwargs):
        self.calls.append((f"{service}.{method}", kwargs))
        return []

    def reports(self):
        return [call[1:3] for call in self.calls if call[0] == "report"]

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


def make_zip(adapter_xml, files=None):
    """The trivial package with ``adapter_xml`` in place of its own, plus ``{name: text}`` files."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(package_zip("trivial"))) as src,
        zipfile.ZipFile(out, "w") as zf,
    ):
        for info in src.infolist():
            data = src.read(info)
            zf.writestr(info, adapter_xml.encode() if info.filename == "adapter.xml" else data)
        for name, text in (files or {}).items():
            zf.writestr(name, text)
    return out.getvalue()


def make_job(adapter_xml=TRIVIAL, files=None):
    """``(job bundle as claimed, files served)`` of a trivial job with ``adapter_xml``."""
    data = make_zip(adapter_xml, files)
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


def runtime(tmp_path, job, served, **agent):
    """A runtime of machine 1 over fakes of ``job``'s central and ``served`` files."""
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
            **agent,
        },
        "DEBUG": {"autorun_job": False},
        "MONITOR": {"interval": 0.2},
    }
    return AgentRuntime(config, central=FakeCentral(job), files=FakeFiles(served))


def close(rt):
    for running in list(rt.running.values()):
        processes.kill_tree(running.pid, running.started, running.token, 0.5)
    rt.close()
