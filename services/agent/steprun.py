"""The stages of one step: launch it, report it RUNNING, find it again, record its end.

Like `services.agent.stages`, each takes the machine's shared state ``rt``
and a job bundle, checks the state first, does its I/O and reports.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import eventlet

from adapters.errors import AdapterError, where_of
from adapters.substitute import build_argv
from services.agent import identity, ledger, processes, slurmexec
from services.agent.hookproc import call_hook
from services.agent.keeperclient import start_step
from services.agent.logs import stderr_tail
from services.agent.reporting import attempt_of, report, write_journal
from services.agent.stages import fail, job_dir, refuse_running
from services.agent.steps import (
    ADAPTER,
    LEDGER,
    LOGS,
    Running,
    hook_context,
    job_env,
    log_paths,
    next_step,
    step_cwd,
    step_env,
    utcnow,
)
from services.common.errors import MirrorError
from services.common.jobstates import DONE, READY, RUNNING
from services.common.names import service_name

log = logging.getLogger(__name__)

# Seconds a step seen ended is looked for in the ledger (`ledger_exit_code`).
LEDGER_WAIT = 1.0


@dataclass
class Launch:
    """What starting one step takes, worked out before anything is written."""

    root: Path
    step_id: str
    step: object
    adapter: object
    workdir: Path
    argv: list
    stdout: Path
    stderr: Path
    publish: dict
    env: dict


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
    started = utcnow()
    launch = plan(rt, job, job_dir(rt, job), next_step(job, step_id))
    pre_hook(rt, job, launch)
    changes = running_changes(launch.step_id, started)
    running = start(rt, job, launch, changes, started, defer_report)
    changes.update(pid=running.pid, pid_start=running.started)
    if running.slurm is not None:
        changes["slurm"] = slurmexec.record(running)
    if defer_report:
        # The start time is read if the report is sent while the step runs.
        later = {"pid": running.pid}
        if running.slurm is not None:
            later["slurm"] = changes["slurm"]
        report(rt, job, later, defer=True)
        running.report_due = time.monotonic() + rt.report_delay
    else:
        try:
            report(rt, job, changes, expect=[READY])
        except MirrorError:
            stop_step(rt, running)
            raise
    log.debug("Job<%s> step %s started, pid %s", job["job_id"], launch.step_id, running.pid)
    return running


def plan(rt, job, root, step_id):
    """The step's working directory, command line and log files; FAILED if they are wrong."""
    adapter = rt.workspace.adapter(job["package"])
    step = adapter.step(step_id)
    publish = rt.published.setdefault(job["job_id"], {})
    try:
        workdir = step_cwd(rt.roots, rt.rid, job, step, root)
        argv = build_argv(step, job["params"], where_of(ADAPTER, step.line, "attribute value"))
        stdout, stderr = log_paths(rt.roots, rt.rid, job, root, workdir)
        for folder in {stdout.parent, stderr.parent}:
            folder.mkdir(parents=True, exist_ok=True)
        env = step_env(rt.base_env, job, root, workdir, step_id)
    except (MirrorError, AdapterError) as exc:
        fail(rt, job, f"step {step_id}: {exc}", step_id)
        raise MirrorError(f"step {step_id} of job {job['job_id']} failed: {exc}") from exc
    return Launch(root, step_id, step, adapter, workdir, argv, stdout, stderr, publish, env)


def pre_hook(rt, job, launch):
    """Call the package's pre hook of the step, if it has one; FAILED if it raises."""
    if not launch.step.premethod:
        return
    context = hook_context(job, launch.root, launch.workdir, launch.step_id, launch.publish)
    try:
        run_hook(rt, job, launch.adapter, launch.step.premethod, context, launch.root)
    except AdapterError as exc:
        fail(rt, job, f"step {launch.step_id}: pre {exc.problem}", launch.step_id)
        raise MirrorError(
            f"step {launch.step_id} of job {job['job_id']} failed: {exc.problem}"
        ) from exc


def running_changes(step_id, started):
    """The report of a step starting (its pid is added once the process exists)."""
    return {
        "state": RUNNING,
        "step": step_id,
        "error": None,
        "pid": None,
        "pid_start": None,
        "steps": {
            step_id: {"state": RUNNING, "start_time": started, "end_time": None, "exit_code": None}
        },
        "message": f"step {step_id} starting",
    }


def start(rt, job, launch, changes, started, defer_report):
    """Record the run in the ledger (and the journal, deferred), then start its process."""
    step_id, root = launch.step_id, launch.root
    token = uuid.uuid4().hex
    ledger_file = str(root / LEDGER)
    err_offset = ledger.size(launch.stderr)
    try:
        ledger.record_start(ledger_file, step_id, token, ledger.size(launch.stdout), err_offset)
        # The step's wrapper appends its exit code; new folders (workpath, logs) are the user's too.
        identity.hand_over(root, rt.run_as)
    except OSError as exc:
        reason = f"step {step_id} could not start: {exc}"
        fail(rt, job, reason, step_id)
        raise MirrorError(reason) from exc
    if defer_report:
        # In the journal before the process exists: an agent killed at any
        # point after this looks for the step instead of starting it again.
        report(rt, job, changes, expect=[READY], defer=True)
        write_journal(job)
    env = {**launch.env, "MIRROR_RUN_TOKEN": token, "MIRROR_EXIT_FILE": ledger_file}
    pid, batch, started_at, kept = None, None, None, False
    try:
        if rt.slurm is not None:
            batch = rt.slurm.start(job, launch, env, token, ledger_file, job.get("time_limit"))
        else:
            pid, started_at, kept = start_step(rt, launch, env, ledger_file, token)
    except (OSError, MirrorError) as exc:
        reason = f"step {step_id} could not start: {exc}"
        fail(rt, job, reason, step_id)
        raise MirrorError(reason) from exc
    if pid is not None and started_at is None and not defer_report:
        started_at = processes.create_time(pid)
    running = Running(
        job_id=job["job_id"],
        step=step_id,
        pid=pid,
        # Unreaped (by the agent or its keeper), a step cannot be mistaken for
        # another process: without the keeper its start time is read only
        # when a report needs it.
        started=started_at,
        kept=kept,
        token=token,
        start_time=started,
        job_dir=str(root),
        ledger_file=ledger_file,
        stderr=str(launch.stderr),
        err_offset=err_offset,
        publish=launch.publish,
        attempt=attempt_of(job),
        slurm=batch,
    )
    rt.running[job["job_id"]] = running
    return running


def stop_step(rt, running):
    """Stop a step whose job moved on without it (refused, timed out, taken away)."""
    running.killed = True
    if running.slurm is not None:
        rt.slurm.stop(running)
        rt.running.pop(running.job_id, None)
        return
    if running.started is None:
        running.started = processes.child_start(running.pid)
    processes.kill_tree(running.pid, running.started, running.token, rt.kill_grace)
    rt.running.pop(running.job_id, None)


def forget(rt, job_id, reason):
    """Stop the job's step here, if one runs, and drop what the agent kept of the job."""
    running = rt.running.get(job_id)
    if running is not None:
        log.warning("Job<%s> stopping step %s here: %s", job_id, running.step, reason)
        stop_step(rt, running)
    rt.published.pop(job_id, None)
    rt.progress_warned.discard(job_id)


def report_running(rt, job, running):
    """Send the deferred RUNNING report of a step still running; False if it was refused."""
    running.report_due = None
    if "_pending" not in job:
        return True
    if running.slurm is not None:
        changes = {"slurm": slurmexec.record(running)}
        running.slurm_changed = False
    else:
        running.started = processes.create_time(running.pid)
        changes = {"pid_start": running.started}
    try:
        report(rt, job, changes)
    except MirrorError as exc:
        log.info(
            "Job<%s> step %s was not recorded as running: %s", running.job_id, running.step, exc
        )
        stop_step(rt, running)
        return False
    return True


def reattach(rt, job):
    """The Running of a step an earlier agent process started, found again.

    A live process must be the same one (pid and start time); a process gone
    while nobody watched is judged by the exit code its wrapper left in the
    ledger for the step's latest run (its Running then has no pid).
    """
    step, root = job["step"], job_dir(rt, job)
    ledger_file = str(root / LEDGER)
    if rt.slurm is not None:
        return slurmexec.reattach(rt, job, step, root, ledger_file)
    pid, started = job.get("pid"), job.get("pid_start")
    if not pid or started is None:
        # Without a start time the recorded pid proves nothing: the step is
        # looked for by its environment, else counted as vanished.
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
        attempt=attempt_of(job),
    )
    rt.running[job["job_id"]] = running
    log.info("Job<%s> step %s found again (pid %s)", job["job_id"], step, job.get("pid"))
    return running


def finish_step(rt, job, running, code, *, autorun=False):
    """Record how a step ended: post hook, step state, then READY or FAILED.

    ``code`` is the exit code seen by the agent, or None when it was not
    (the ledger is asked then). In autorun the READY report is deferred: the
    next stage's report carries it.
    """
    step_id = running.step
    ended = utcnow()
    if running.killed:
        return job
    if running.slurm is not None:
        # The node list the step ran on rides with its outcome; deferred, the
        # expected state is the one central holds (the outcome's own).
        report(rt, job, {"slurm": slurmexec.record(running)}, expect=[RUNNING], defer=True)
    if code is None and running.token:
        code = ledger_exit_code(running)
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
    problem = post_hook(rt, job, running)
    if problem is not None:
        return fail(rt, job, f"step {step_id}: post {problem}", step_id, code)
    changes = {
        "state": READY,
        "pid": None,
        "pid_start": None,
        "steps": {step_id: {"state": DONE, "exit_code": code, "end_time": ended}},
        "message": f"step {step_id} done",
    }
    try:
        report(rt, job, changes, expect=[RUNNING], defer=autorun)
    except MirrorError as exc:
        log.info("Job<%s> step %s ended after the job moved on: %s", job["job_id"], step_id, exc)
    return job


def ledger_exit_code(running, wait=LEDGER_WAIT, tick=0.05):
    """The exit code the ledger holds for ``running``, looked for up to ``wait`` seconds.

    A step keeper records a step's code just after the step ended: an agent
    that watched the pid itself (started again meanwhile) may look first.
    """
    deadline = time.monotonic() + (0 if running.slurm is not None else wait)
    while True:
        code = ledger.exit_code(running.ledger_file, running.token)
        if code is not None or time.monotonic() >= deadline:
            return code
        eventlet.sleep(tick)


def post_hook(rt, job, running):
    """Call the package's post hook of the step; the problem it raised, or None."""
    adapter = rt.workspace.adapter(job["package"])
    step = adapter.step(running.step)
    if not step.postmethod:
        return None
    root = Path(running.job_dir)
    workdir = step_cwd(rt.roots, rt.rid, job, step, root)
    context = hook_context(job, root, workdir, running.step, running.publish)
    try:
        run_hook(rt, job, adapter, step.postmethod, context, root)
    except (AdapterError, MirrorError) as exc:
        return getattr(exc, "problem", str(exc))
    return None


def run_hook(rt, job, adapter, name, context, root):
    """Call hook ``name`` in a process of its own, as the step would run; output in .mirror."""
    package = job["package"]
    return call_hook(
        rt.workspace.package_dir(package) / adapter.hooks,
        f"{package['c_id']}_{package['sha256'][:12]}",
        name,
        context,
        env=job_env(rt.base_env, job, root, context.step),
        cwd=str(root),
        output=root / LOGS / "hooks.log",
        timeout=rt.hook_timeout,
        run_as=rt.run_as,
    )
