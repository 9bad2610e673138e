"""After an outage of central: agree again with central on which jobs this machine holds.

The stalled reports are delivered first (`services.agent.outbox`); then a
step whose job central took away meanwhile (failed, killed, queued again,
given another attempt, deleted) is stopped, and a job central still counts
as this machine's but the agent no longer holds is taken up again as at
start-up (`services.agent.recovery`).
"""

import logging

from services.agent import autorun, recovery
from services.agent.reporting import attempt_of
from services.agent.steprun import forget
from services.common.errors import MirrorError
from services.common.jobstates import ACTIVE

log = logging.getLogger(__name__)


def due(rt):
    """Whether an outage ended since the last re-sync (start-up recovery done, none under way)."""
    return rt.recovered and not rt.syncing and rt.outbox.reconnected > rt.synced


def resync(rt):
    """Reconcile the jobs held here with central's records; tried again at the next beat if it fails."""
    rt.syncing, rt.synced = True, rt.outbox.reconnected
    try:
        for job_id in list(rt.running):
            check_held(rt, job_id)
        recovery.recover_jobs(rt)
        if rt.autorun:
            autorun.catch_up(rt)
    except MirrorError as exc:
        log.warning("Machine<%s> re-sync after the outage failed: %s", rt.rid, exc)
        rt.synced -= 1
        return
    finally:
        rt.syncing = False
    log.info("Machine<%s> re-synced with central after the outage", rt.rid)


def check_held(rt, job_id):
    """Stop the job's step here unless central still has this attempt active on this machine."""
    running = rt.running.get(job_id)
    if running is None:
        return
    try:
        current = rt.central.fetch(job_id)
    except MirrorError as exc:
        if "is not existed" not in str(exc):
            raise
        forget(rt, job_id, "the job no longer exists")
        return
    attempt = attempt_of(current)
    if (
        current["rid"] == rt.rid
        and current["state"] in ACTIVE
        and (running.attempt is None or attempt in (None, running.attempt))
    ):
        return
    forget(
        rt,
        job_id,
        f"central has it {current['state']} on machine {current['rid']} (attempt {attempt})",
    )
