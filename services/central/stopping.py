"""Stopping a job: queued ones in central, others through their machine's ``jobkill``."""

import logging

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


def killed_without_machine(db, job, reason):
    """Record ``job`` KILLED by central itself, its machine out of reach."""
    db.jobs.report(job["job_id"], None, {"state": KILLED, "error": reason, "message": reason})
    log.warning("Job<%s> marked killed without its machine: %s", job["job_id"], reason)
