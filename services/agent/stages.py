"""One function per job stage: check the state, do the I/O, then report the new state.

The same functions serve the manual per-machine RPC calls and autorun. A
stage met again in the state it leads to does nothing (or says so), so a
repeated call is safe. Each takes the machine's shared state ``rt`` (see
`services.agent.runtime`: central client, outbox, file store, workspace,
running steps) and a job bundle from ``job.fetch``; none touches the
database. The stages of a single step are in `services.agent.steprun`.
"""

import logging
import shutil
from pathlib import Path

from adapters.errors import AdapterError, where_of
from adapters.filegen import data_path, generate_files
from adapters.paths import confine
from adapters.progress import read_progress
from adapters.substitute import substitute
from services.agent import identity, ledger, processes
from services.agent.reporting import report
from services.agent.steps import ADAPTER, LEDGER, utcnow
from services.agent.workspace import copy_tree
from services.common.errors import MirrorError
from services.common.jobstates import (
    ACTIVE,
    COMPLETED,
    DONE,
    FAILED,
    FINAL,
    KILLED,
    PREPARING,
    QUEUED,
    READY,
    RUNNING,
)
from services.common.names import service_name

log = logging.getLogger(__name__)


# -- shared checks ---------------------------------------------------------------
def fetch(rt, job_id):
    """The job bundle; central refuses a job placed on another resource machine."""
    return rt.central.fetch(job_id, rt.rid)


def job_dir(rt, job):
    """The job's directory, or an error saying to build it first."""
    if not job.get("path") or not Path(job["path"]).is_dir():
        raise MirrorError(
            f"job {job['job_id']} has no directory on this machine; "
            f"call {service_name('jobdirbuild', rt.rid)}.do first"
        )
    return Path(job["path"])


def refuse_running(job, action):
    """Refuse ``action`` while the job runs a step."""
    if job["state"] == RUNNING:
        raise MirrorError(
            f"job {job['job_id']} is running step {job['step']}; kill it before {action}"
        )


def fail(rt, job, reason, step=None, exit_code=None, result=None):
    """Mark the job FAILED with ``reason`` (and its step, if one failed; ``result``: URLs published).

    The failed step becomes the job's ``step``, so that the job's step and its
    error name the same one (a step that failed before starting was never
    reported RUNNING).
    """
    changes = {"state": FAILED, "error": reason, "message": reason}
    if step:
        changes["step"] = step
        changes["steps"] = {step: {"state": FAILED, "exit_code": exit_code, "end_time": utcnow()}}
    if result:
        changes["result"] = result
    log.warning("Job<%s> failed: %s", job["job_id"], reason)
    try:
        return report(rt, job, changes, expect=list(ACTIVE))
    except MirrorError:
        # Already final (killed meanwhile): that outcome stands.
        return job


# -- claim ------------------------------------------------------------------------
def claim(rt, job_id):
    """Take a queued job for this machine: its bundle, or None if it is not queued here."""
    try:
        return rt.outbox.claim(job_id, rt.rid)
    except MirrorError as exc:
        log.info("Job<%s> not claimed: %s", job_id, exc)
        return None


# -- directory build -----------------------------------------------------------------
def build_directory(rt, job, force=False, defer=False):
    """Create the job directory: package in .mirror/calc, project in .mirror/proj, template at root."""
    refuse_running(job, "building its directory again")
    built = job.get("path") and Path(job["path"]).is_dir()
    if built and not force and job["state"] != QUEUED:
        return job
    rt.workspace.check_free(job["job_id"])
    path = rt.workspace.new_job_dir(job["job_id"])
    try:
        lay_out(rt.workspace, job, path)
        identity.hand_over(path, rt.run_as)
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


def lay_out(workspace, job, path):
    """Copy the package, its template and the project files into the new directory ``path``."""
    package, tree, template = workspace.package_tree(job["package"])
    copy_tree(package, path / ".mirror" / "calc", tree)
    if template:
        copy_tree(package / "template", path, template)
    proj = path / ".mirror" / "proj"
    proj.mkdir(parents=True, exist_ok=True)
    for entry in job["project_files"]:
        target = confine(proj, entry["name"], "project file name", "the project directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workspace.project_file(job["p_id"], entry), target)


# -- file generation -------------------------------------------------------------------
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
        identity.hand_over(root, rt.run_as)
    except (OSError, AdapterError) as exc:
        # A placeholder or path of the package or project: the user's to fix, said as such.
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


# -- monitoring and results ---------------------------------------------------------------
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
    urls, _ = publish_items(rt, job, root, adapter.process, "process")
    # Conditional on the state seen: a job taken away meanwhile refuses it.
    expect = None if defer else [job["state"]]
    process = process_values(rt, job, progress, urls)
    return report(rt, job, {"process": process}, expect=expect, defer=defer)


def process_values(rt, job, progress, urls):
    """The monitoring values of a job: progress (step counts without a Progress file),
    what its hooks published, and the URLs of its Process files."""
    if progress is None:
        steps = job["steps"]
        done = sum(1 for s in steps if s["state"] == DONE)
        progress = (min(done + (1 if job["state"] == RUNNING else 0), len(steps)), len(steps))
    process = {"currentstep": str(progress[0]), "allstep": str(progress[1])}
    process.update(
        {k: str(v) for k, v in rt.published.get(job["job_id"], {}).items() if k not in process}
    )
    process.update(urls)
    return process


def recover(rt, job, linger=0.0):
    """Publish the Result files and mark the job COMPLETED (``linger``: see `report`)."""
    if job["state"] == COMPLETED:
        return job
    refuse_running(job, "recovering its results")
    if job["state"] != READY:
        raise MirrorError(
            f"job {job['job_id']} is {job['state']}; only a READY job has results to recover"
        )
    pending = [s["id"] for s in job["steps"] if s["state"] != DONE]
    if pending:
        raise MirrorError(f"job {job['job_id']} has steps not done yet: {', '.join(pending)}")
    root = job_dir(rt, job)
    adapter = rt.workspace.adapter(job["package"])
    monitor(rt, job, defer=True)
    urls, missing = publish_items(rt, job, root, adapter.result, "result")
    if missing:
        # Those produced are published all the same: a partial run is still worth reading.
        names = ", ".join(f"{m.key} ({m.path})" for m in missing)
        reason = f"results not produced: {names}"
        if urls:
            reason += f"; published: {', '.join(sorted(urls))}"
        return fail(rt, job, reason, result=urls)
    return report(
        rt,
        job,
        {"state": COMPLETED, "result": urls, "message": "results recovered"},
        expect=[READY],
        linger=linger,
    )


# -- kill and delete ---------------------------------------------------------------------
def kill(rt, job, reason="killed by user"):
    """Stop the job's whole process tree (or its place in the queue); recover nothing."""
    if job["state"] in FINAL:
        raise MirrorError(f"job not running , jobid : {job['job_id']}")
    running = rt.running.get(job["job_id"])
    changes = {"state": KILLED, "error": reason, "message": reason}
    if running is not None:
        running.killed = True
        if running.started is None:
            # Autorun reads a step's start time only when a report needs it.
            running.started = processes.child_start(running.pid)
    # A running step's RUNNING report may still wait in the bundle, deferred.
    step = running.step if running is not None else job["step"] if job["state"] == RUNNING else None
    if step:
        changes["steps"] = {step: {"state": KILLED, "end_time": utcnow()}}
    report(rt, job, changes, expect=[QUEUED, *ACTIVE])
    if rt.slurm is not None:
        stop_batch(rt, job, running, step)
    elif running is not None:
        processes.kill_tree(running.pid, running.started, running.token, rt.kill_grace)
    elif step and job.get("path"):
        # Only a process carrying the run's token is signalled: the latest run's, from the ledger.
        run = ledger.last_run(str(Path(job["path"]) / LEDGER), step)
        token = run.token if run is not None else None
        processes.kill_tree(job.get("pid"), job.get("pid_start"), token, rt.kill_grace)
    rt.running.pop(job["job_id"], None)
    log.info("Job<%s> killed", job["job_id"])
    return job


def stop_batch(rt, job, running, step):
    """Cancel the step's Slurm job: the watched one, else the latest run's in the ledger."""
    if running is not None and running.slurm is not None:
        rt.slurm.stop(running)
    elif step and job.get("path"):
        run = ledger.last_run(str(Path(job["path"]) / LEDGER), step)
        rt.slurm.cancel(run.slurm if run is not None else None, job["job_id"])


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
    rt.progress_warned.discard(job["job_id"])
    log.info("Job<%s> deleted", job["job_id"])
