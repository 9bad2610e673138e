"""Sweep policies applied inside a report's transaction: the throttle and automatic retries.

A claim of a job whose sweep already runs ``max_running`` jobs is refused (it
stays QUEUED); when one of them ends, the oldest waiting jobs of the sweep go
back to the outbox for their machine. A job that fails the way its
``RETRY_ON`` parameter names is queued again, up to ``MAX_RETRIES`` times,
on another machine when one has room (`elsewhere`).
"""

import logging
from datetime import timedelta

from sqlalchemy import func, select, update

from db.models import Sweep
from services.central.storage import outbox
from services.central.storage.elsewhere import other_machine
from services.central.storage.records import JOBS, STEPS
from services.common.errors import MirrorError
from services.common.jobstates import ACTIVE, FAILED, FINAL, QUEUED, STEP_RESET

log = logging.getLogger(__name__)

SWEEPS = Sweep.__table__

# Outbox rows of released jobs are dated back so that the reconciler's next
# drain publishes them (it leaves young rows to the placer publishing them).
RELEASE_AGE = timedelta(hours=1)

#: The key of a job row read with its sweep's ``max_running`` (`transitions.reported_row`);
#: a row without it has the throttle read on its own.
SWEEP_LIMIT = "sweep_limit"


def running_in(db, sweep_id):
    """How many jobs of the sweep an agent holds now."""
    query = select(func.count()).where(JOBS.c.sweep_id == sweep_id, JOBS.c.state.in_(ACTIVE))
    return db.execute(query).scalar()


def check_throttle(db, job):
    """Refuse the claim of ``job`` while its sweep runs its ``max_running`` jobs.

    The sweep's row is locked first, so that claims on two machines at once
    count one after the other.
    """
    if job["sweep_id"] is None or not job.get(SWEEP_LIMIT, True):
        # Read with the job's row (`SWEEP_LIMIT`): an unthrottled sweep costs
        # its claims no query and no lock, so they never wait on each other.
        return
    query = select(SWEEPS.c.max_running).where(SWEEPS.c.id == job["sweep_id"])
    if SWEEP_LIMIT not in job and not db.execute(query).scalar():
        return
    limit = db.execute(query.with_for_update()).scalar()
    if not limit:
        return
    if running_in(db, job["sweep_id"]) >= limit:
        raise MirrorError(
            f"job {job['id']} waits: sweep {job['sweep_id']} runs its limit of {limit} job(s)"
        )


def release(db, sweep_id, stamp, lifted=False):
    """Queue again, for their machines, the waiting jobs a throttled sweep now has room for.

    With ``lifted`` (the throttle just raised or removed) an unthrottled sweep
    releases every waiting job; otherwise only a throttled one releases any.
    Answers the ``(job_id, rid, ncpus)`` entries given to the outbox.
    """
    limit = db.execute(select(SWEEPS.c.max_running).where(SWEEPS.c.id == sweep_id)).scalar()
    if not limit and not lifted:
        return []
    room = None if not limit else limit - running_in(db, sweep_id)
    if room is not None and room <= 0:
        return []
    query = (
        select(JOBS.c.id, JOBS.c.rid, JOBS.c.ncpus)
        .where(JOBS.c.sweep_id == sweep_id, JOBS.c.state == QUEUED, JOBS.c.rid.is_not(None))
        .order_by(JOBS.c.id)
    )
    if room is not None:
        query = query.limit(room)
    entries = [tuple(row) for row in db.execute(query)]
    outbox.add(db, entries, stamp - RELEASE_AGE)
    return entries


def retry_policy(params):
    """``(max_retries, codes)`` of a job's parameters; ``codes`` None means any failure."""
    try:
        limit = int(str(params.get("MAX_RETRIES", 0)).strip() or 0)
    except ValueError:
        limit = 0
    spec = str(params.get("RETRY_ON", "any")).strip().lower()
    if spec in ("", "any"):
        return limit, None
    codes = set()
    for part in spec.replace(",", ";").split(";"):
        if part.strip().lstrip("-").isdigit():
            codes.add(int(part))
    return limit, codes


def check_policy(params):
    """Refuse ``MAX_RETRIES`` or ``RETRY_ON`` values that cannot be read (at dispatch)."""
    if "MAX_RETRIES" in params:
        value = str(params["MAX_RETRIES"]).strip()
        if not value.isdigit():
            raise MirrorError(f"MAX_RETRIES must be a whole number of 0 or more, not {value!r}")
    if "RETRY_ON" in params:
        spec = str(params["RETRY_ON"]).strip().lower()
        parts = [p.strip() for p in spec.replace(",", ";").split(";")]
        if spec != "any" and not all(p.lstrip("-").isdigit() for p in parts):
            raise MirrorError(
                f"RETRY_ON must be 'any' or exit codes separated by ';' (137;143), not {spec!r}"
            )


def failed_exit_code(steps):
    """The exit code of the step that failed, None when none says."""
    for step in steps:
        if step["state"] == FAILED and step["exit_code"] is not None:
            return step["exit_code"]
    return None


def maybe_retry(db, job, steps, stamp, insert_event, stale=None):
    """Queue a job that just FAILED again when its retry policy says so; answer whether it did.

    The failed attempt stays in the events, and the retry's event names the
    machine it failed on. The job goes to another machine with room now
    (`elsewhere.other_machine`, machines online within ``stale``), else back
    unplaced for the reconciler to place anywhere; a job pinned to its
    machine stays there.
    """
    limit, codes = retry_policy(job["params"] or {})
    used = job.get("retries") or 0
    if used >= limit:
        return False
    code = failed_exit_code(steps)
    if codes is not None and code not in codes:
        return False
    failed_rid = job["rid"]
    if job["pinned"]:
        rid, published = failed_rid, stamp
    else:
        rid = other_machine(db, job, failed_rid, stamp, stale)
        # Dated back, so that the drain of the call recording the failure
        # publishes it at once: the new machine does not hold the id.
        published = stamp - RELEASE_AGE
    sets = {
        "state": QUEUED,
        "rid": rid,
        "published_at": stamp if rid is not None else None,
        "retries": used + 1,
        "step": None,
        "path": None,
        "pid": None,
        "pid_start": None,
        "process": {},
        "result": {},
        "error": None,
        "start_time": None,
        "end_time": None,
        "updated": stamp,
    }
    db.execute(update(JOBS).where(JOBS.c.id == job["id"]).values(**sets))
    db.execute(update(STEPS).where(STEPS.c.job_id == job["id"]).values(**STEP_RESET))
    why = f"exit code {code}" if code is not None else "a failure"
    message = f"retry {used + 1} of {limit} after {why} on resource machine {failed_rid}"
    if rid is not None and rid != failed_rid:
        message += f"; placed on resource machine {rid}"
    insert_event(db, job["id"], stamp, message)
    if rid is not None:
        outbox.add(db, [(job["id"], rid, job["ncpus"])], published)
    log.info("Job<%s> %s", job["id"], message)
    job.update(sets)
    for step in steps:
        step.update(STEP_RESET)
    return True


def after_transition(db, job, old_state, steps, stamp, insert_event, stale=None):
    """What a job's sweep and policy do once a report moved it from ``old_state``.

    ``stale``: how long a machine stays online after its last heartbeat (None:
    a retry is never placed at once, the reconciler places it). Answers the
    ``(job_id, rid, ncpus)`` entries to publish once committed: the waiting
    jobs a throttled sweep released, and a retry placed on another machine
    (both outbox rows dated back). A retry pinned to its machine, or left
    unplaced, is left to the reconciler: its machine may still hold its id.
    """
    entries = []
    if job["state"] == FAILED and old_state != FAILED:
        retried = maybe_retry(db, job, steps, stamp, insert_event, stale)
        if retried and job["rid"] is not None and not job["pinned"]:
            entries.append((job["id"], job["rid"], job["ncpus"]))
    if old_state in ACTIVE and (job["state"] in FINAL or job["state"] == QUEUED):
        # A sweep unthrottled when the job's row was read releases nothing.
        if job["sweep_id"] is not None and job.get(SWEEP_LIMIT, True):
            entries += release(db, job["sweep_id"], stamp)
    return entries
