"""The machine API on Slurm-executor machines: job ids are Slurm's.

A job submitted there is a Mirror job like any other; its step runs as a
Slurm batch job, whose id (``job.query``'s ``slurm.job_id``) is the one the
API answers and accepts. See docs/newt.md, section 11.
"""

import time

from services.common.errors import job_missing
from services.common.jobstates import FINAL

from . import mesh
from .errors import BadRequest, JobNotFound, NoAnswer

# Seconds between two looks at a job waiting to be handed to Slurm.
TICK = 0.2


def is_slurm(machine):
    """Whether ``machine`` (a ``machine.list`` entry) runs its steps on Slurm."""
    return machine.get("slurm") is not None


def mirror_id(services, machine, slurm_id, timeout):
    """The Mirror job on ``machine`` whose latest step ran as Slurm job ``slurm_id``; else 404."""
    kwargs = {"rid": machine["rid"], "slurm_id": slurm_id, "limit": 1}
    found = mesh.ask(services, "job", "list", kwargs, timeout)
    if not found:
        raise JobNotFound(str(job_missing(slurm_id)))
    return found[0]["job_id"]


def wait_slurm_id(services, job_id, settings):
    """Slurm's id of Mirror job ``job_id``, once its agent submitted it (at most ``timeout``).

    A job that ended before reaching Slurm answers 400 with its error; one
    still waiting for the machine's cores after ``GATEWAY.timeout`` 504.
    """
    deadline = time.monotonic() + settings.timeout
    while True:
        job = mesh.ask(services, "job", "query", {"job_id": job_id}, settings.timeout)
        batch = job.get("slurm") or {}
        if batch.get("job_id"):
            return str(batch["job_id"])
        if job["state"] in FINAL:
            raise BadRequest(f"job {job_id} ended before reaching Slurm: {job.get('error')}")
        if time.monotonic() >= deadline:
            raise NoAnswer(
                f"job {job_id} was not handed to Slurm within {settings.timeout:g} s "
                f"(it waits for free cores); it runs as Mirror job {job_id}"
            )
        time.sleep(TICK)
