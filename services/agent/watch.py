"""Watching a running step: monitoring, its time limit, its deferred RUNNING report, its end.

A step also stops here when its job is taken away from the machine (failed,
killed or queued again by central without this agent).
"""

import logging
import time
from datetime import datetime

from services.agent import processes, slurmexec, stages
from services.agent.keeperclient import GONE
from services.agent.livewatch import LiveMonitor
from services.agent.reporting import Superseded, report
from services.agent.steprun import finish_step, forget, report_running, stop_step
from services.common.errors import MirrorError
from services.common.jobstates import RUNNING

log = logging.getLogger(__name__)


def deadline(job):
    """When the job's time limit runs out (epoch seconds), or None without a limit.

    It counts from the job's start, or its first step's while that is not
    reported yet, or from now for a job with neither.
    """
    if not job.get("time_limit"):
        return None
    starts = [s["start_time"] for s in job["steps"] if s.get("start_time")]
    started = job.get("start_time") or min(starts, default=None)
    begun = datetime.fromisoformat(started).timestamp() if started else time.time()
    return begun + float(job["time_limit"]) * 60


def watch(rt, job, running, *, autorun=False):
    """Wait for a step to end, monitoring meanwhile; then record how it ended.

    Monitoring follows the Progress and Process files as they change
    (`services.agent.livewatch`).
    """
    limit = deadline(job)
    live = LiveMonitor(rt, job, running.step)
    while True:
        wait = live.poll
        if running.report_due is not None:
            wait = min(wait, max(0.0, running.report_due - time.monotonic()))
        if limit is not None:
            wait = max(0.0, min(wait, limit - time.time()))
        ended, code = wait_step(rt, running, wait)
        if ended:
            break
        if running.killed:
            return job
        if running.slurm_changed and running.report_due is None:
            report_slurm(rt, job, running)
        if limit is not None and time.time() >= limit:
            return time_out(rt, job, running)
        if running.report_due is not None:
            # A step outlasting AGENT.report_delay is recorded RUNNING now.
            if time.monotonic() >= running.report_due and not report_running(rt, job, running):
                return job
            continue
        try:
            live.tick()
        except Superseded as exc:
            forget(rt, job["job_id"], str(exc))
            return job
        except MirrorError as exc:
            if taken_away(rt, job, running):
                return job
            log.warning("Job<%s> monitoring failed: %s", job["job_id"], exc)
    rt.running.pop(job["job_id"], None)
    if not running.killed:
        try:
            live.at_end()
        except MirrorError as exc:
            log.warning("Job<%s> progress warning not recorded: %s", job["job_id"], exc)
    if code is None and not running.killed and (running.slurm or {}).get("state") == "TIMEOUT":
        # Slurm's --time is a backstop of the job's own limit: the same outcome.
        return time_out(rt, job, running)
    return finish_step(rt, job, running, code, autorun=autorun)


def wait_step(rt, running, timeout):
    """``(ended, exit code)`` of the step, waiting at most ``timeout`` seconds."""
    if rt.slurm is not None:
        return rt.slurm.wait(running, timeout)
    if running.kept:
        ended, code = rt.keeper.wait(running.pid, timeout)
        if code is not GONE:
            return ended, code
        # The keeper is gone: the step's end is watched here, its code read from the ledger.
        running.kept = False
    return processes.wait_exit(running.pid, timeout=timeout, started=running.started)


def report_slurm(rt, job, running):
    """Record the Slurm job's node list and partition once Slurm placed it."""
    running.slurm_changed = False
    try:
        report(rt, job, {"slurm": slurmexec.record(running)}, expect=[RUNNING])
    except MirrorError as exc:
        log.info("Job<%s> Slurm placement not recorded: %s", job["job_id"], exc)


def taken_away(rt, job, running):
    """Stop a step whose job was failed, killed or queued again without this agent."""
    try:
        current = rt.central.fetch(job["job_id"])
    except MirrorError:
        return False
    if still_ours(rt, current, running):
        return False
    log.warning(
        "Job<%s> is now %s on machine %s (attempt %s); stopping its step %s here",
        job["job_id"],
        current["state"],
        current["rid"],
        current.get("attempts"),
        running.step,
    )
    stop_step(rt, running)
    return True


def still_ours(rt, current, running):
    """Whether central's record ``current`` still has ``running``'s attempt running here."""
    attempt = current.get("attempt", current.get("attempts"))
    return (
        current["state"] == RUNNING
        and current["rid"] == rt.rid
        and (running.attempt is None or attempt in (None, running.attempt))
    )


def time_out(rt, job, running):
    """Fail the job for its time limit and stop its step."""
    running.killed = True
    reason = f"time limit of {job['time_limit']:g} min exceeded in step {running.step}"
    stages.fail(rt, job, reason, running.step)
    stop_step(rt, running)
    return job


def watch_in_background(rt, job, running):
    """Watch a step in a green thread of the runtime (manual runs and recovered steps)."""
    rt.spawn(_watch_logged, rt, job, running)


def _watch_logged(rt, job, running):
    try:
        watch(rt, job, running)
    except Exception:  # noqa: BLE001 - a watcher must never die silently
        log.exception("Job<%s> watcher failed", job["job_id"])
        stages.fail(rt, job, f"agent lost track of step {running.step}")
