"""Where an automatic retry goes: another machine with room, chosen in the failure's transaction.

A job that failed on a machine is retried on another online autorun machine
that fits its cores and tags and has the room for it now, so that a machine
at fault does not take the job back while another one is free. When no other
machine has room (or only the failing one exists), the job waits unplaced and
the reconciler places it wherever there is room, the failing machine included:
a one-machine mesh still retries.
"""

from datetime import timedelta

from sqlalchemy import func, select

from db.models import Machine
from services.central.storage.records import JOBS
from services.common.jobstates import ACTIVE, QUEUED

MACHINES = Machine.__table__


def stale_after(agent_config):
    """How long a machine stays online after its last heartbeat (``AGENT`` settings)."""
    return timedelta(
        seconds=float(agent_config["heartbeat"]) * float(agent_config["offline_after"])
    )


def other_machine(db, job, failed_rid, stamp, stale):
    """The rid of another machine with room for ``job`` now, or None.

    Only online autorun machines other than ``failed_rid`` whose slots and
    tags fit; a machine has room when its free cores, after the jobs it runs
    and those already queued for it, hold the job. The most free cores win,
    ties to the lower rid (as placement does).
    """
    if stale is None:
        return None
    ncpus = int(job["ncpus"] or 1)
    tags = set(job["tags"] or [])
    query = select(MACHINES.c.rid, MACHINES.c.slots, MACHINES.c.tags).where(
        MACHINES.c.autorun.is_(True),
        MACHINES.c.last_heartbeat >= stamp - stale,
    )
    if failed_rid is not None:
        query = query.where(MACHINES.c.rid != failed_rid)
    slots = {
        rid: max(int(n), 1)
        for rid, n, machine_tags in db.execute(query)
        if max(int(n), 1) >= ncpus and tags <= set(machine_tags or [])
    }
    if not slots:
        return None
    free = dict(slots)
    load = (
        select(JOBS.c.rid, JOBS.c.state, func.count(), func.coalesce(func.sum(JOBS.c.ncpus), 0))
        .where(JOBS.c.rid.in_(list(slots)), JOBS.c.state.in_((QUEUED, *ACTIVE)))
        .group_by(JOBS.c.rid, JOBS.c.state)
    )
    for rid, state, count, cores in db.execute(load):
        # Queued jobs count as this job's size, as placement counts them.
        free[rid] -= count * ncpus if state == QUEUED else int(cores)
    roomy = [rid for rid in free if free[rid] >= ncpus]
    if not roomy:
        return None
    return max(roomy, key=lambda rid: (free[rid], -rid))
