"""Calls to the mesh: one RPC with its failures as gateway errors, and what the REST routes ask.

``services`` is a :class:`services.common.cluster.Services`; every failure leaves here
as a :class:`gateway.errors.GatewayError` (see :data:`gateway.errors.CALL_ERRORS`
and :data:`gateway.errors.CENTRAL_ERRORS`).
"""

import logging

from nameko.exceptions import UnknownService

from services.common.errors import job_missing

from .errors import (
    CALL_ERRORS,
    REST_CALL_ERRORS,
    GatewayError,
    JobNotFound,
    Refused,
    ServiceFailed,
    call_error,
    central_error,
)

log = logging.getLogger(__name__)

# Logs come from the job's machine in chunks; one answer holds at most this much.
LOG_CHUNK = 1024 * 1024
LOG_LIMIT = 4 * LOG_CHUNK
# A machine that went away must not hold a query for the whole RPC timeout.
SIDE_TIMEOUT = 5.0
# Job ids are 32-bit database integers: a larger id names no job.
MAX_JOB_ID = 2**31 - 1


def call(services, service, method, kwargs, timeout):
    """``service.method(**kwargs)``'s whole ``[code, value]`` answer, as ``/proxy`` passes it on."""
    try:
        return services.call(service, method, kwargs, timeout)
    except Exception as exc:
        raise call_error(exc, service, method, timeout) from None


def ask(services, service, method, kwargs, timeout, unmatched=Refused):
    """The value of a ``[code, value]`` answer from central; a ``[-1, ...]`` one is raised.

    ``unmatched`` is the error type of a ``[-1, message]`` that
    :data:`gateway.errors.CENTRAL_ERRORS` does not name.
    """
    try:
        code, value = services.call(service, method, kwargs, timeout)
    except Exception as exc:
        raise call_error(exc, service, method, timeout, REST_CALL_ERRORS) from None
    if code != 0:
        raise central_error(value, unmatched)
    return value


def submit_job(services, kwargs, timeout):
    """The id of a new script job (``jobdispatch.submit``); central checks the arguments."""
    return ask(services, "jobdispatch", "submit", kwargs, timeout)


def cancel_job(services, job_id, timeout):
    """Stop ``job_id``; raises :class:`~gateway.errors.JobNotRunning` when it has ended."""
    _check_exists(job_id)
    # The job exists and runs, so any other refusal is central failing to stop it.
    ask(services, "job", "cancel", {"job_id": job_id}, timeout, unmatched=ServiceFailed)


def query_job(services, job_id, timeout):
    """``(record, logs, node)``: ``job.query``'s record, its output so far, its machine's name."""
    _check_exists(job_id)
    job = ask(services, "job", "query", {"job_id": job_id}, timeout)
    node, logs = "", None
    if job.get("rid") is not None:
        side = min(timeout, SIDE_TIMEOUT)
        machine = machine_of(services, job["rid"], side)
        node = (machine or {}).get("name") or f"rid{job['rid']}"
        # Nothing to read before the job has a directory, nor from a machine that is down.
        if job.get("path") and machine and machine.get("online"):
            logs = read_logs(services, job, side)
    return job, logs, node


def _check_exists(job_id):
    if job_id > MAX_JOB_ID:
        raise JobNotFound(str(job_missing(job_id)))


def machine_of(services, rid, timeout):
    """The ``machine.list`` entry of ``rid``, or None."""
    try:
        machines = ask(services, "machine", "list", {}, timeout)
    except GatewayError:
        return None
    return next((m for m in machines if m.get("rid") == rid), None)


def read_logs(services, job, timeout):
    """The job's current step output so far; empty when its machine does not answer."""
    out = {"stdout": "", "stderr": ""}
    offsets = {"offset_out": 0, "offset_err": 0}
    service = f"jobagent_{job['rid']}"
    for _ in range(LOG_LIMIT // LOG_CHUNK):
        try:
            code, chunk = services.call(
                service,
                "logs",
                {"job_id": job["job_id"], "max_bytes": LOG_CHUNK, **offsets},
                timeout,
            )
        except Exception as exc:  # noqa: BLE001 - any failure: answer with what we have
            log.info("Job<%s> logs unavailable: %s", job["job_id"], type(exc).__name__)
            break
        if code != 0:
            break
        out["stdout"] += chunk["stdout"]
        out["stderr"] += chunk["stderr"]
        full = False
        for key in offsets:
            full |= chunk[key] - offsets[key] >= LOG_CHUNK
            offsets[key] = chunk[key]
        if not full:
            break
    return out


def machines_or_failure(services, timeout):
    """``(machine.list's answer, None)``, or ``(None, (where, message))`` for ``/health``.

    ``where`` is ``"broker"`` when central did not answer over RPC,
    ``"database"`` when it answered with an error.
    """
    try:
        code, value = services.call("machine", "list", {}, timeout)
    except UnknownService:
        return None, ("broker", "central services are not running")
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return None, ("broker", call_error(exc, "machine", "list", timeout, CALL_ERRORS).message)
    if code != 0:
        return None, ("database", str(value))
    return value, None
