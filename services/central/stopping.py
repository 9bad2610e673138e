"""Stopping jobs: queued ones in central, others through their machine's ``jobkill``.

One job (``job.cancel``) takes one ``jobkill_<rid>.do(job_id)`` call; many
(``sweep.kill``) take one ``jobkill_<rid>.do(job_ids=[...])`` call per machine.
"""

import logging
import math
from collections import defaultdict

from nameko.exceptions import RpcTimeout, UnknownService

from services.common.errors import MirrorError
from services.common.jobstates import FINAL, KILLED, QUEUED
from services.common.names import service_name

log = logging.getLogger(__name__)


def stop_job(db, services, timeout, job, reason):
    """Stop ``job`` (a record) in any unfinished state; refuse a finished one."""
    job_id = job["job_id"]
    if job["state"] in FINAL:
        raise MirrorError(f"job not running , jobid : {job_id}")
    if job["state"] == QUEUED and db.jobs.cancel_queued(job_id, reason):
        return
    if not db.machines.is_online(job["rid"]):
        # Nobody would take the call: the job is stopped here, and a machine
        # that comes back finds it KILLED and stops what is left of it.
        killed_without_machine(db, job, f"{reason}; resource machine {job['rid']} is offline")
        return
    kill = service_name("jobkill", job["rid"])
    try:
        code, value = services.call(kill, "do", {"job_id": job_id, "reason": reason}, timeout)
    except (UnknownService, RpcTimeout) as exc:
        # The machine is gone: the job can no longer be reached, record it stopped.
        killed_without_machine(
            db,
            job,
            f"{reason}; resource machine {job['rid']} did not answer ({type(exc).__name__})",
        )
        return
    if code != 0:
        raise MirrorError(value)


# Jobs a machine stops side by side in one call (``services/agent/killing.py``):
# the call's timeout grows by one ``timeout`` per round of that many.
KILL_POOL = 16


def stop_jobs(db, services, timeout, jobs, reason):
    """Stop ``jobs`` (records), one ``jobkill`` call per machine; answer ``(stopped ids, errors)``.

    Finished jobs are skipped; queued ones are stopped in central; the jobs
    of an offline or silent machine are recorded KILLED here, as `stop_job`
    does. ``errors`` are ``"job <id>: <message>"`` texts.
    """
    stopped, errors = [], []
    by_machine = defaultdict(list)
    for job in jobs:
        if job["state"] in FINAL:
            continue
        if job["state"] == QUEUED and db.jobs.cancel_queued(job["job_id"], reason):
            stopped.append(job["job_id"])
        elif not db.machines.is_online(job["rid"]):
            why = f"{reason}; resource machine {job['rid']} is offline"
            killed_without_machine(db, job, why)
            stopped.append(job["job_id"])
        else:
            by_machine[job["rid"]].append(job)
    for rid, group in sorted(by_machine.items()):
        done, failed = _stop_on(db, services, timeout, rid, group, reason)
        stopped += done
        errors += failed
    return stopped, errors


def _stop_on(db, services, timeout, rid, jobs, reason):
    """Stop ``jobs`` of machine ``rid`` in one call; answer ``(stopped ids, errors)``."""
    ids = [job["job_id"] for job in jobs]
    kill = service_name("jobkill", rid)
    wait = timeout * math.ceil(len(ids) / KILL_POOL)
    try:
        code, value = services.call(kill, "do", {"job_ids": ids, "reason": reason}, wait)
    except (UnknownService, RpcTimeout) as exc:
        why = f"{reason}; resource machine {rid} did not answer ({type(exc).__name__})"
        for job in jobs:
            try:
                # A job the machine stopped before the call timed out keeps its own record.
                if db.jobs.get(job["job_id"])["state"] not in FINAL:
                    killed_without_machine(db, job, why)
            except MirrorError:
                continue  # deleted meanwhile: nothing left to stop
        return ids, []
    if code != 0:
        return [], [f"job {job_id}: {value}" for job_id in ids]
    errors = [f"job {job_id}: {message}" for job_id, message in value["errors"].items()]
    return value["stopped"], errors


def killed_without_machine(db, job, reason):
    """Record ``job`` KILLED by central itself, its machine out of reach."""
    db.jobs.report(job["job_id"], None, {"state": KILLED, "error": reason, "message": reason})
    log.warning("Job<%s> marked killed without its machine: %s", job["job_id"], reason)
