"""Start-up: find the jobs an earlier agent process of this machine left unfinished (SPEC section 10)."""

import logging

from services.agent import autorun, processes, stages
from services.agent.reporting import replay_journal
from services.agent.steprun import reattach
from services.agent.watch import watch_in_background
from services.common.errors import MirrorError
from services.common.jobstates import ACTIVE, RUNNING

log = logging.getLogger(__name__)


def start(rt):
    """Pick up where an earlier agent process left off; tried again at the next beat if it fails."""
    try:
        # Reports an earlier process left on disk go first: they may move jobs on.
        rt.outbox.wait_online()
        rt.synced = rt.outbox.reconnected
        recover_jobs(rt)
        if rt.autorun:
            autorun.catch_up(rt)
        rt.recovered = True
    except MirrorError as exc:
        log.warning("Machine<%s> start-up recovery failed: %s", rt.rid, exc)
    finally:
        rt.recovering = False


def recover_jobs(rt):
    """Take up again every job central records as this machine's and not final."""
    mine = rt.central.call("job", "list", state=",".join(ACTIVE), rid=rt.rid, limit=100000)
    stop_strays(rt, {summary["job_id"] for summary in mine})
    for summary in mine:
        job_id = summary["job_id"]
        if rt.scheduler.started(job_id) or job_id in rt.running:
            continue
        try:
            recover_job(rt, stages.fetch(rt, job_id))
        except MirrorError as exc:
            log.warning("Job<%s> could not be recovered: %s", job_id, exc)


def stop_strays(rt, mine):
    """Stop the steps an earlier process left running for jobs no longer this machine's.

    Such a job moved on while this machine was away (a new attempt elsewhere,
    or it ended): its old step would only compete with the new one.
    """
    if rt.slurm is not None:
        for job_id, batch_ids in rt.slurm.strays(rt.workspace.root).items():
            if job_id in mine or job_id in rt.running:
                continue
            log.warning("Job<%s> is no longer this machine's; cancelling its Slurm jobs", job_id)
            for batch_id in batch_ids:
                rt.slurm.cancel(batch_id, job_id)
        return
    for job_id, (pid, started) in processes.strays(rt.workspace.root).items():
        if job_id in mine or job_id in rt.running:
            continue
        log.warning("Job<%s> is no longer this machine's; stopping its old step", job_id)
        processes.kill_tree(pid, started, processes.token_of(pid), grace=rt.kill_grace)


def recover_job(rt, job):
    """Replay its journal, find its running step again, and go on with it."""
    replay_journal(job, rt.workspace.job_dirs(job["job_id"]))
    running = None
    if job["state"] == RUNNING:
        running = reattach(rt, job)
    if rt.autorun:
        autorun.resume(rt, job, running)
    elif running is not None:
        watch_in_background(rt, job, running)
