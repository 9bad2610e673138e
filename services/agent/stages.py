"""One function per job stage: check the state, do the I/O, then record the new state.

The same functions serve the manual per-machine RPC calls and autorun. Every
function takes the agent runtime ``rt`` (central client, file store, workspace)
and a job bundle from ``job.fetch``; none touches the database.
"""

import json
import logging
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from adapters.errors import AdapterError, where_of
from adapters.filegen import data_path, generate_files, step_workdir
from adapters.hooks import HookContext
from adapters.paths import confine
from adapters.progress import read_progress
from adapters.substitute import build_argv, substitute
from services.agent import ledger, processes
from services.agent.workspace import copy_tree
from services.common.errors import MirrorError
from services.common.jobstates import (
    COMPLETED,
    FAILED,
    FINAL,
    KILLED,
    PREPARING,
    QUEUED,
    READY,
    RUNNING,
    apply_changes,
    merge_changes,
)
from services.common.names import service_name

log = logging.getLogger(__name__)

ADAPTER = "adapter.xml"


def utcnow():
    return datetime.now(UTC).isoformat()


@dataclass
class Running:
    """A step process the agent started and watches."""

    job_id: int
    step: str
    pid: int | None
    started: float | None
    token: str
    start_time: str
    job_dir: str
    killed: bool = False
    # The job's step ledger (`services.agent.ledger`), and where this run's stderr begins.
    ledger_file: str = ""
    stderr: str = ""
    err_offset: int = 0
    # When a RUNNING report deferred in autorun is due (time.monotonic()).
    report_due: float | None = None
    publish: dict = field(default_factory=dict)


# -- helpers -------------------------------------------------------------------
def fetch(rt, job_id):
    """The job bundle, refused when it belongs to another resource machine."""
    job = rt.central.fetch(job_id)
    if job["rid"] is None:
        raise MirrorError(f"job {job_id} is waiting for a resource machine, not {rt.rid}")
    if job["rid"] != rt.rid:
        raise MirrorError(f"job {job_id} belongs to resource machine {job['rid']}, not {rt.rid}")
    return job


def report(rt, job, changes, expect=None, defer=False, linger=0.0):
    """Report a transition and fold the new record into the bundle.

    With ``defer`` the change is applied to the bundle only and travels with
    the next report (autorun saves a round trip per stage this way); the
    merged report is checked against what the first deferred change expected,
    since that is the state the database still holds. With ``linger`` the
    report may wait that many seconds to ride with another call (a claim).
    """
    pending = job.get("_pending")
    if defer:
        if pending is None:
            pending = job["_pending"] = {"changes": {}, "expect": expect}
        merge_changes(pending["changes"], changes)
        apply_changes(job, changes)
        return job
    if pending is not None:
        merged = {}
        merge_changes(merged, pending["changes"])
        merge_changes(merged, changes)
        changes, expect = merged, pending["expect"] if pending["expect"] else expect
    updated = rt.central.report(job["job_id"], rt.rid, changes, expect, linger=linger)
    if (job.pop("_pending", None) or {}).get("journal"):
        drop_journal(job)
    job.update(updated)
    return job


# Deferred changes are written to the job directory before a step starts: an
# agent restarted before sending them learns from this journal which step it
# had started. What is not journaled can be done again (directory and files)
# or learned again (a step's end, from its exit file).
JOURNAL = Path(".mirror") / "pending.json"
# The steps' shared output and their ledger (`services.agent.ledger`); in
# .mirror itself, since each directory made per job costs a file creation.
LOGS = Path(".mirror")
LEDGER = LOGS / "steps"


def write_journal(job):
    """Append the pending changes as one line; the last whole line is the one that counts.

    Appending, not replacing: a rename over the old file makes ext4 flush
    the new one's data, which cost more than the rest of a trivial step.
    """
    job["_pending"]["journal"] = True
    saved = {"attempt": job.get("attempts"), **job["_pending"]}
    try:
        with open(Path(job["path"]) / JOURNAL, "a", encoding="utf-8") as out:
            out.write(json.dumps(saved) + "\n")
    except OSError as exc:
        log.warning("Job<%s> journal not written: %s", job["job_id"], exc)


def read_journal(path):
    """The last complete entry of a journal file, or None."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
    return None


def drop_journal(job):
    """Empty the journal once its changes are recorded.

    Emptied, not removed: ext4 without a journal of its own skips every
    inode freed in the last minutes when it creates a file, so each removal
    here would make the machine's next file creations slower.
    """
    if not job.get("path"):
        return
    try:
        os.truncate(Path(job["path"]) / JOURNAL, 0)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("Job<%s> journal not emptied: %s", job["job_id"], exc)


def replay_journal(rt, job):
    """Fold in the changes an earlier agent process deferred and never sent; True if any.

    A journal counts only for the job's current attempt, and only while the
    job is still in the state those changes expected (else they were sent).
    """
    for root in reversed(rt.workspace.job_dirs(job["job_id"])):
        saved = read_journal(root / JOURNAL)
        if saved is None or saved.get("attempt") != job.get("attempts"):
            continue
        if saved.get("expect") and job["state"] not in saved["expect"]:
            continue
        job["_pending"] = {
            "changes": saved["changes"],
            "expect": saved.get("expect"),
            "journal": True,
        }
        apply_changes(job, saved["changes"])
        log.info("Job<%s> unsent changes found in %s", job["job_id"], root / JOURNAL)
        return True
    return False


def job_dir(rt, job):
    """The job's directory, or an error saying to build it first."""
    if not job.get("path") or not Path(job["path"]).is_dir():
        raise MirrorError(
            f"job {job['job_id']} has no directory on this machine; "
            f"call {service_name('jobdirbuild', rt.rid)}.do first"
        )
    return Path(job["path"])


def refuse_running(job, action):
    if job["state"] == RUNNING:
        raise MirrorError(
            f"job {job['job_id']} is running step {job['step']}; kill it before {action}"
        )


def fail(rt, job, reason, step=None, exit_code=None):
    """Mark the job FAILED with ``reason`` (and its step, if one was running)."""
    changes = {"state": FAILED, "error": reason, "message": reason}
    if step:
        changes["steps"] = {step: {"state": FAILED, "exit_code": exit_code, "end_time": utcnow()}}
    log.warning("Job<%s> failed: %s", job["job_id"], reason)
    try:
        return report(rt, job, changes, expect=[PREPARING, READY, RUNNING])
    except MirrorError:
        # Already final (killed meanwhile): that outcome stands.
        return job


# -- claim ----------------------------------------------------------------------
def claim(rt, job_id):
    """Take a queued job for this machine: its bundle, or None if it is not queued here."""
    try:
        return rt.central.claim(job_id, rt.rid)
    except MirrorError as exc:
        log.info("Job<%s> not claimed: %s", job_id, exc)
        return None


# -- directory build ------------------------------------------------------------------
def build_directory(rt, job, force=False, defer=False):
    """Create the job directory: package in .mirror/calc, project in .mirror/proj, template at root."""
    refuse_running(job, "building its directory again")
    built = job.get("path") and Path(job["path"]).is_dir()
    if built and not force and job["state"] != QUEUED:
        return job
    path = rt.workspace.new_job_dir(job["job_id"])
    try:
        package, tree, template = rt.workspace.package_tree(job["package"])
        copy_tree(package, path / ".mirror" / "calc", tree)
        if template:
            copy_tree(package / "template", path, template)
        proj = path / ".mirror" / "proj"
        proj.mkdir(parents=True, exist_ok=True)
        for entry in job["project_files"]:
            target = confine(proj, entry["name"], "project file name", "the project directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rt.workspace.project_file(job["p_id"], entry), target)
    except (OSError, AdapterError, MirrorError) as exc:
        shutil.rmtree(path, ignore_errors=True)
        raise MirrorError(f"directory build of job {job['job_id']} failed: {exc}") from exc
    changes = {
        "state": PREPARING,
        "path": str(path),
        "step": None,
        "error": None,
        "reset_steps": True,
        "process": {},
        "message": f"directory built at {path}",
    }
    try:
        report(rt, job, changes, expect=[job["state"]], defer=defer)
    except MirrorError:
        shutil.rmtree(path, ignore_errors=True)
        raise
    log.debug("Job<%s> directory built at %s", job["job_id"], path)
    return job


# -- file generation --------------------------------------------------------------------
def build_files(rt, job, defer=False):
    """Apply the adapter's File and ParaFile rules with the parameters stored on the job."""
    refuse_running(job, "generating its files again")
    if job["state"] not in (PREPARING, READY):
        raise MirrorError(
            f"job {job['job_id']} is {job['state']}; call "
            f"{service_name('jobdirbuild', rt.rid)}.do"
            + (" with force=1" if job["state"] in FINAL else "")
            + " first"
        )
    root = job_dir(rt, job)
    adapter = rt.workspace.adapter(job["package"])
    try:
        restore_templates(root, adapter, job["params"])
        generate_files(adapter, job["params"], root, root / ".mirror" / "proj", ADAPTER)
    except OSError as exc:
        raise MirrorError(f"file generation of job {job['job_id']} failed: {exc}") from exc
    return report(
        rt,
        job,
        {"state": READY, "message": "files generated"},
        expect=[PREPARING, READY],
        defer=defer,
    )


def restore_templates(root, adapter, params):
    """Put back the package's template of every ParaFile rendered in place.

    Without it a second file generation would find no placeholders left.
    """
    pristine_root = root / ".mirror" / "calc" / "template"
    for rule in adapter.parafiles:
        if rule.target is not None:
            continue
        where = where_of(ADAPTER, rule.line, "attribute source")
        rel = substitute(rule.source, params, where)
        pristine = confine(pristine_root, rel, where)
        if pristine.is_file():
            target = confine(root, rel, where)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pristine, target)


# -- steps --------------------------------------------------------------------------
def next_step(job, step_id):
    """The step to run: ``step_id``, or the first one not done yet."""
    ids = [s["id"] for s in job["steps"]]
    if step_id is not None:
        if step_id not in ids:
            raise MirrorError(
                f"job {job['job_id']} has no step {step_id!r}; steps: {', '.join(ids)}"
            )
        return step_id
    for step in job["steps"]:
        if step["state"] != "DONE":
            return step["id"]
    raise MirrorError(f"job {job['job_id']} has run all its steps; recover its results")


def step_env(rt, job, root, workdir, step, token, ledger_file):
    env = dict(os.environ)
    # The job directory and the workpath come first, then the agent's own interpreter.
    env["PATH"] = os.pathsep.join(
        [str(root), str(workdir), os.path.dirname(sys.executable), env.get("PATH", "")]
    )
    env.update(
        MIRROR_JOB_ID=str(job["job_id"]),
        MIRROR_JOB_DIR=str(root),
        MIRROR_STEP=step,
        NCPUS=str(job["params"].get("NCPUS", 1)),
        MIRROR_RUN_TOKEN=token,
        MIRROR_EXIT_FILE=ledger_file,
        PYTHONUNBUFFERED="1",
    )
    env.update({str(k): str(v) for k, v in (job.get("environment") or {}).items()})
    return env


def log_paths(rt, job, root, step, workdir):
    """Where a step's stdout and stderr go: the job's own paths if set, else in .mirror.

    Every step of the job appends to the same two files; the ledger says
    where each run begins.
    """
    logs = root / LOGS
    logs.mkdir(parents=True, exist_ok=True)
    out = [logs / "stdout", logs / "stderr"]
    for i, key in enumerate(("stdout_path", "stderr_path")):
        if job.get(key):
            out[i] = allowed_path(rt, job, job[key].replace("%j", str(job["job_id"])), workdir, key)
            out[i].parent.mkdir(parents=True, exist_ok=True)
    return tuple(out)


def allowed_path(rt, job, value, base, what):
    """``value`` (relative to ``base``) if it lies inside the machine's allowed roots."""
    path = Path(os.path.normpath(Path(base) / value))
    real = Path(os.path.realpath(path))
    for root in rt.roots:
        if real == Path(root) or Path(root) in real.parents:
            return path
    raise MirrorError(
        f"job {job['job_id']}: {what} {value!r} is outside the allowed roots of resource machine "
        f"{rt.rid}: {', '.join(rt.roots)}"
    )


def step_cwd(rt, job, step, root):
    """The step's working directory: the job's own (a submitted script's), else its workpath."""
    if job.get("workdir"):
        cwd = allowed_path(rt, job, job["workdir"], root, "working directory")
        if not cwd.is_dir():
            raise MirrorError(
                f"job {job['job_id']}: working directory {job['workdir']!r} does not exist"
            )
        return cwd
    return step_workdir(step, job["params"], root, ADAPTER)


def hook_context(job, root, workdir, step, publish):
    return HookContext(
        job_id=job["job_id"],
        job_dir=str(root),
        workpath=str(workdir),
        step=step,
        params=dict(job["params"]),
        publish=publish,
    )


def launch_step(rt, job, step_id=None, defer_report=False):
    """Run the pre hook, start the step's process, record it RUNNING; return once started.

    The process starts before the RUNNING report so that one report carries
    its pid too; were that report refused (the job was killed meanwhile), the
    process is stopped again at once. With ``defer_report`` (autorun) the
    report waits in the journal: a step still running after
    ``AGENT.report_delay`` seconds gets it then (`report_running`), a shorter
    one is reported once, with its end.
    """
    refuse_running(job, "starting another step")
    if job["state"] != READY:
        raise MirrorError(
            f"job {job['job_id']} is {job['state']}; its files must be generated "
            f"({service_name('jobfilebuild', rt.rid)}.do) before a step runs"
        )
    root = job_dir(rt, job)
    step_id = next_step(job, step_id)
    adapter = rt.workspace.adapter(job["package"])
    step = adapter.step(step_id)
    params = job["params"]
    publish = rt.published.setdefault(job["job_id"], {})
    started = utcnow()
    try:
        workdir = step_cwd(rt, job, step, root)
        argv = build_argv(step, params, where_of(ADAPTER, step.line, "attribute value"))
        stdout, stderr = log_paths(rt, job, root, step_id, workdir)
    except (MirrorError, AdapterError) as exc:
        fail(rt, job, f"step {step_id}: {exc}", step_id)
        raise MirrorError(f"step {step_id} of job {job['job_id']} failed: {exc}") from exc
    if step.premethod:
        try:
            rt.workspace.hooks(job["package"], adapter).call(
                step.premethod, hook_context(job, root, workdir, step_id, publish)
            )
        except AdapterError as exc:
            fail(rt, job, f"step {step_id}: pre {exc.problem}", step_id)
            raise MirrorError(
                f"step {step_id} of job {job['job_id']} failed: {exc.problem}"
            ) from exc
    token = uuid.uuid4().hex
    ledger_file = str(root / LEDGER)
    changes = {
        "state": RUNNING,
        "step": step_id,
        "error": None,
        "pid": None,
        "pid_start": None,
        "steps": {
            step_id: {
                "state": "RUNNING",
                "start_time": started,
                "end_time": None,
                "exit_code": None,
            }
        },
        "message": f"step {step_id} starting",
    }
    err_offset = ledger.size(stderr)
    try:
        ledger.record_start(ledger_file, step_id, token, ledger.size(stdout), err_offset)
    except OSError as exc:
        reason = f"step {step_id} could not start: {exc}"
        fail(rt, job, reason, step_id)
        raise MirrorError(reason) from exc
    if defer_report:
        # In the journal before the process exists: an agent killed at any
        # point after this looks for the step instead of starting it again.
        report(rt, job, changes, expect=[READY], defer=True)
        write_journal(job)
    try:
        pid = processes.start(
            argv,
            cwd=str(workdir),
            env=step_env(rt, job, root, workdir, step_id, token, ledger_file),
            stdout=stdout,
            stderr=stderr,
        )
    except OSError as exc:
        reason = f"step {step_id} could not start: {exc}"
        fail(rt, job, reason, step_id)
        raise MirrorError(reason) from exc
    running = Running(
        job_id=job["job_id"],
        step=step_id,
        pid=pid,
        started=None if defer_report else processes.create_time(pid),
        token=token,
        start_time=started,
        job_dir=str(root),
        ledger_file=ledger_file,
        stderr=str(stderr),
        err_offset=err_offset,
        publish=publish,
    )
    rt.track(running)
    changes.update(pid=pid, pid_start=running.started)
    if defer_report:
        # The start time is read if the report is sent while the step runs.
        report(rt, job, {"pid": pid}, defer=True)
        running.report_due = time.monotonic() + rt.report_delay
    else:
        report_launch(rt, job, running, changes)
    log.debug("Job<%s> step %s started, pid %s", job["job_id"], step_id, pid)
    return running


def report_launch(rt, job, running, changes):
    try:
        report(rt, job, changes, expect=[READY])
    except MirrorError:
        stop_refused(rt, running)
        raise


def stop_refused(rt, running):
    """Stop a step whose RUNNING report was refused: the job moved on without it."""
    running.killed = True
    processes.kill_tree(running.pid, running.started, running.token, rt.kill_grace)
    rt.forget(running.job_id)


def report_running(rt, job, running):
    """Send the deferred RUNNING report of a step still running; False if it was refused."""
    running.report_due = None
    if "_pending" not in job:
        return True
    running.started = processes.create_time(running.pid)
    try:
        report(rt, job, {"pid_start": running.started})
    except MirrorError as exc:
        log.info(
            "Job<%s> step %s was not recorded as running: %s", running.job_id, running.step, exc
        )
        stop_refused(rt, running)
        return False
    return True


def reattach(rt, job):
    """The Running of a step an earlier agent process started, or None if it is settled here.

    A live process must be the same one (pid and start time); a process gone
    while nobody watched is judged by the exit code its wrapper left in the
    ledger for the step's latest run.
    """
    step, root = job["step"], job_dir(rt, job)
    ledger_file = str(root / LEDGER)
    pid, started = job.get("pid"), job.get("pid_start")
    if not pid:
        pid, started = processes.find_step(job["job_id"], step, root) or (None, None)
    token = None
    if processes.alive(pid, started):
        token = processes.token_of(pid)
    else:
        pid = None
    run = ledger.last_run(ledger_file, step)
    if token is None and run is not None:
        token = run.token
    running = Running(
        job_id=job["job_id"],
        step=step,
        pid=pid,
        started=started,
        token=token,
        start_time=utcnow(),
        job_dir=str(root),
        ledger_file=ledger_file,
        err_offset=run.err if run is not None and run.token == token else 0,
        publish=rt.published.setdefault(job["job_id"], {}),
    )
    rt.track(running)
    log.info("Job<%s> step %s found again (pid %s)", job["job_id"], step, job.get("pid"))
    return running


def finish_step(rt, job, running, code, *, autorun=False):
    """Record how a step ended: post hook, step state, then READY or FAILED."""
    step_id = running.step
    ended = utcnow()
    if running.killed:
        return job
    if code is None:
        code = ledger.exit_code(running.ledger_file, running.token) if running.token else None
    if code is None:
        return fail(
            rt,
            job,
            f"step {step_id}: process {running.pid} vanished without an exit code "
            "(the agent was restarted while it ran)",
            step_id,
        )
    if code != 0:
        return fail(
            rt, job, f"step {step_id} exited with code {code}{stderr_tail(running)}", step_id, code
        )
    adapter = rt.workspace.adapter(job["package"])
    step = adapter.step(step_id)
    if step.postmethod:
        root = Path(running.job_dir)
        workdir = step_cwd(rt, job, step, root)
        try:
            rt.workspace.hooks(job["package"], adapter).call(
                step.postmethod, hook_context(job, root, workdir, step_id, running.publish)
            )
        except AdapterError as exc:
            return fail(rt, job, f"step {step_id}: post {exc.problem}", step_id, code)
    changes = {
        "state": READY,
        "pid": None,
        "pid_start": None,
        "steps": {step_id: {"state": "DONE", "exit_code": code, "end_time": ended}},
        "message": f"step {step_id} done",
    }
    try:
        # In autorun the next stage's report carries this one (READY is not kept).
        report(rt, job, changes, expect=[RUNNING], defer=autorun)
    except MirrorError as exc:
        log.info("Job<%s> step %s ended after the job moved on: %s", job["job_id"], step_id, exc)
    return job


def stderr_tail(running, limit=300, window=65536):
    """The last line the step wrote to stderr, to make the failure reason useful."""
    path = running.stderr or Path(running.job_dir) / LOGS / "stderr"
    # Only this run's part of the shared file, and only its end.
    begin = max(running.err_offset, ledger.size(path) - window)
    data = ledger.read_window(path, begin, None, 0, window)
    lines = [line for line in data.decode(errors="replace").splitlines() if line.strip()]
    return f": {lines[-1][-limit:]}" if lines else ""


def read_logs(rt, job, step_id=None, offset_out=0, offset_err=0, max_bytes=65536):
    """A step's stdout and stderr from the given byte offsets (for live logs).

    The offsets count from the start of the step's latest run.
    """
    steps = [s["id"] for s in job["steps"]]
    step_id = step_id or job.get("step") or (steps[0] if steps else None)
    if step_id not in steps:
        raise MirrorError(f"job {job['job_id']} has no step {step_id!r}; steps: {', '.join(steps)}")
    out = {
        "step": step_id,
        "stdout": "",
        "stderr": "",
        "offset_out": offset_out,
        "offset_err": offset_err,
    }
    if not job.get("path") or not Path(job["path"]).is_dir():
        return out
    root = Path(job["path"])
    run = ledger.last_run(root / LEDGER, step_id)
    if run is None:
        return out
    step = rt.workspace.adapter(job["package"]).step(step_id)
    try:
        workdir = step_cwd(rt, job, step, root)
        paths = log_paths(rt, job, root, step_id, workdir)
    except (MirrorError, AdapterError):
        return out
    windows = (
        ("stdout", paths[0], "offset_out", run.out, run.out_end),
        ("stderr", paths[1], "offset_err", run.err, run.err_end),
    )
    for name, path, key, begin, end in windows:
        data = ledger.read_window(path, begin, end, out[key], max_bytes)
        out[name] = data.decode("utf-8", errors="replace")
        out[key] += len(data)
    return out


# -- monitoring and results -------------------------------------------------------------
def publish_items(rt, job, root, items, kind):
    """Upload Process or Result data items; return ``{key: url}`` of those that exist."""
    urls, missing = {}, []
    for item in items:
        local = data_path(item, job["params"], root, ADAPTER)
        if not local.exists():
            missing.append(item)
            continue
        remote = f"/jobs/{job['job_id']}/{kind}/{item.key}/{local.name}"
        rt.files.upload(local, remote)
        urls[item.key] = rt.files.url(remote)
    return urls, missing


def monitor(rt, job, defer=False):
    """Refresh progress and publish the Process files."""
    if job["state"] == QUEUED or not job.get("path"):
        raise MirrorError(f"job {job['job_id']} is {job['state']}; nothing to monitor yet")
    root = job_dir(rt, job)
    adapter = rt.workspace.adapter(job["package"])
    progress = None
    if adapter.progress:
        where = where_of(ADAPTER, None, "Progress path")
        progress = read_progress(
            confine(root, substitute(adapter.progress, job["params"], where), where)
        )
    if progress is None:
        steps = job["steps"]
        done = sum(1 for s in steps if s["state"] == "DONE")
        progress = (min(done + (1 if job["state"] == RUNNING else 0), len(steps)), len(steps))
    urls, _ = publish_items(rt, job, root, adapter.process, "process")
    process = {"currentstep": str(progress[0]), "allstep": str(progress[1])}
    process.update(
        {k: str(v) for k, v in rt.published.get(job["job_id"], {}).items() if k not in process}
    )
    process.update(urls)
    # Conditional on the state seen: a job taken away meanwhile refuses it.
    expect = None if defer else [job["state"]]
    return report(rt, job, {"process": process}, expect=expect, defer=defer)


def recover(rt, job, linger=0.0):
    """Publish the Result files and mark the job COMPLETED (see `report` for ``linger``)."""
    if job["state"] == COMPLETED:
        return job
    refuse_running(job, "recovering its results")
    if job["state"] != READY:
        raise MirrorError(
            f"job {job['job_id']} is {job['state']}; only a READY job has results to recover"
        )
    pending = [s["id"] for s in job["steps"] if s["state"] != "DONE"]
    if pending:
        raise MirrorError(f"job {job['job_id']} has steps not done yet: {', '.join(pending)}")
    root = job_dir(rt, job)
    adapter = rt.workspace.adapter(job["package"])
    monitor(rt, job, defer=True)
    urls, missing = publish_items(rt, job, root, adapter.result, "result")
    if missing:
        names = ", ".join(f"{m.key} ({m.path})" for m in missing)
        return fail(rt, job, f"results not produced: {names}")
    return report(
        rt,
        job,
        {"state": COMPLETED, "result": urls, "message": "results recovered"},
        expect=[READY],
        linger=linger,
    )


# -- kill and delete -------------------------------------------------------------------
def kill(rt, job, reason="killed by user"):
    """Stop the job's whole process tree (or its place in the queue); recover nothing."""
    if job["state"] in FINAL:
        raise MirrorError(f"job not running , jobid : {job['job_id']}")
    running = rt.running.get(job["job_id"])
    changes = {"state": KILLED, "error": reason, "message": reason}
    if running is not None:
        running.killed = True
    # A running step's RUNNING report may still wait in autorun's journal.
    step = running.step if running is not None else job["step"] if job["state"] == RUNNING else None
    if step:
        changes["steps"] = {step: {"state": "KILLED", "end_time": utcnow()}}
    report(rt, job, changes, expect=[QUEUED, PREPARING, READY, RUNNING])
    if running is not None:
        processes.kill_tree(running.pid, running.started, running.token, rt.kill_grace)
    elif job.get("pid"):
        processes.kill_tree(job["pid"], job.get("pid_start"), None, rt.kill_grace)
    rt.forget(job["job_id"])
    log.info("Job<%s> killed", job["job_id"])
    return job


def delete(rt, job, force=False):
    """Remove the job's directories, its published files and its records."""
    if job["state"] not in FINAL:
        if not force:
            raise MirrorError(
                f"job {job['job_id']} is {job['state']}; delete it with force=1 to kill it first"
            )
        kill(rt, job, "killed to be deleted")
    for path in rt.workspace.job_dirs(job["job_id"]):
        shutil.rmtree(path, ignore_errors=True)
    rt.files.delete_tree(f"/jobs/{job['job_id']}")
    rt.central.call("job", "remove", job_id=job["job_id"], rid=rt.rid)
    rt.published.pop(job["job_id"], None)
    log.info("Job<%s> deleted", job["job_id"])
