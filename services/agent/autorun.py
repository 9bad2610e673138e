"""Autorun: take job ids from the machine's queue and run each claimed job through every stage.

The runtime's `Scheduler` decides which waiting jobs start; this module
starts them, one green thread per job, and gives their cores back. A job
started early (short jobs, free cores none) is claimed and prepared at once
and waits for its cores before its first step (`take_cores`).
"""

import logging

from eventlet.event import Event

from adapters.errors import AdapterError
from services.agent import stages
from services.agent.reporting import Superseded
from services.agent.steprun import forget, launch_step
from services.agent.watch import watch
from services.common.errors import MirrorError
from services.common.jobstates import DONE, PREPARING, QUEUED, READY

log = logging.getLogger(__name__)


def enqueue(rt, job_id, ncpus=1):
    """Take a job id from the machine's queue; it starts when its cores are free."""
    if rt.scheduler.add(job_id, ncpus):
        schedule(rt)


def schedule(rt):
    """Start every waiting job whose cores are free; refuse those that never fit."""
    start, refuse, granted = rt.scheduler.pick()
    for job_id in granted:
        rt.core_grants.pop(job_id).send()
    for job_id, ncpus in refuse:
        rt.spawn(_refuse, rt, job_id, ncpus)
    for job_id in start:
        rt.spawn(_claim_and_run, rt, job_id)


def free_cores(rt, job_id):
    """Give back a job's cores and start whatever now fits."""
    if rt.scheduler.release(job_id):
        schedule(rt)


def take_cores(rt, job_id):
    """Wait until the job holds its cores: at once, unless it was started early."""
    if rt.scheduler.has_cores(job_id):
        return
    granted = rt.core_grants[job_id] = Event()
    rt.scheduler.ask(job_id)
    schedule(rt)
    granted.wait()


def resume(rt, job, running=None):
    """Run the rest of a job met again after a restart; it holds its cores meanwhile."""
    rt.scheduler.hold(job["job_id"], job["ncpus"])
    rt.spawn(_resume, rt, job, running)


def catch_up(rt):
    """Enqueue the jobs already queued for this machine (messages taken before a restart)."""
    for job in reversed(rt.central.call("job", "list", state=QUEUED, rid=rt.rid, limit=10000)):
        enqueue(rt, job["job_id"], job.get("ncpus", 1))


def _refuse(rt, job_id, ncpus):
    job = stages.claim(rt, job_id)
    if job is not None:
        stages.fail(
            rt, job, f"job needs {ncpus} cores; resource machine {rt.rid} has {rt.slots} slots"
        )


def _claim_and_run(rt, job_id):
    try:
        job = stages.claim(rt, job_id)
        if job is not None:
            run_pipeline(rt, job)
    finally:
        free_cores(rt, job_id)


def _resume(rt, job, running):
    try:
        run_pipeline(rt, job, running)
    finally:
        free_cores(rt, job["job_id"])


def run_pipeline(rt, job, running=None):
    """Every stage of a claimed job, in order, with no calls from outside.

    It also resumes a job met again after a restart: built stages are
    skipped, a step still running (``running``) is watched to its end.
    """
    job_id = job["job_id"]
    try:
        if running is not None:
            watch(rt, job, running, autorun=True)
            if running.killed or job["state"] != READY:
                return
        if job["state"] == PREPARING:
            # Both stages' reports ride with the first step's RUNNING report.
            stages.build_directory(rt, job, defer=True)
            stages.build_files(rt, job, defer=True)
        take_cores(rt, job_id)
        while any(s["state"] != DONE for s in job["steps"]):
            running = launch_step(rt, job, defer_report=True)
            watch(rt, job, running, autorun=True)
            if running.killed or job["state"] != READY:
                return
        # Publishing results takes no cores: the next job may start meanwhile.
        free_cores(rt, job_id)
        # With jobs still waiting, a claim follows soon: the final report rides
        # with it, one round trip for both (at most AGENT.report_delay later).
        linger = rt.report_delay if rt.scheduler.waiting else 0.0
        stages.recover(rt, job, linger=linger)
        log.info("Job<%s> %s", job_id, job["state"])
    except Superseded as exc:
        # Another attempt owns the job now: nothing of this one is reported any more.
        forget(rt, job_id, str(exc))
    except (MirrorError, AdapterError) as exc:
        # A mistake in the package or the parameters: recorded in the user's words.
        stages.fail(rt, job, str(exc))
    except Exception as exc:  # noqa: BLE001 - the job must end, never stay RUNNING
        log.exception("Job<%s> autorun failed", job_id)
        stages.fail(rt, job, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        rt.published.pop(job_id, None)
        rt.progress_warned.discard(job_id)
