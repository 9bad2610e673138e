"""Stopping several jobs of this machine in one call (``jobkill_<rid>.do(job_ids=[...])``).

Central's ``sweep.kill`` sends one call per machine instead of one per job;
the jobs are stopped side by side, each as ``jobkill_<rid>.do(job_id)`` would.
"""

import logging

import eventlet

from services.agent import stages
from services.common.errors import MirrorError
from services.common.rpc import to_int

log = logging.getLogger(__name__)

# Jobs stopped at once: each waits up to ``AGENT.kill_grace`` for its processes.
KILL_POOL = 16


def job_id_list(job_ids):
    """``job_ids`` as a list of ints, refused when it is not a list of job ids."""
    if not isinstance(job_ids, list | tuple) or not job_ids:
        raise MirrorError(f"job_ids must be a non-empty list of job ids, got {job_ids!r}")
    return [to_int(job_id, "job_ids entry") for job_id in job_ids]


def kill_many(rt, job_ids, reason):
    """Stop every job of ``job_ids``; answer ``{"stopped": [ids], "errors": {id: message}}``.

    A job that cannot be stopped (finished already, another machine's) is
    named in ``errors`` with the message ``jobkill_<rid>.do`` would answer;
    the others are stopped regardless.
    """
    job_ids = job_id_list(job_ids)

    def stop(job_id):
        try:
            stages.kill(rt, stages.fetch(rt, job_id), reason)
        except MirrorError as exc:
            return job_id, str(exc)
        return job_id, None

    stopped, errors = [], {}
    for job_id, error in eventlet.GreenPool(KILL_POOL).imap(stop, job_ids):
        if error is None:
            stopped.append(job_id)
        else:
            errors[str(job_id)] = error
    log.info(
        "Machine<%s> jobkill: %d job(s) stopped in one call, %d refused",
        rt.rid,
        len(stopped),
        len(errors),
    )
    return {"stopped": stopped, "errors": errors}
