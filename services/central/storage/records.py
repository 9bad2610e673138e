"""Job rows and the record shapes of SPEC section 6 built from them."""

from datetime import UTC, datetime

from sqlalchemy import bindparam, select

from db.models import Job, JobEvent, JobStep
from services.common.errors import job_missing

JOBS, STEPS, EVENTS = Job.__table__, JobStep.__table__, JobEvent.__table__

# Built once: every report and claim reads a job and its steps, and building a
# statement and its cache key costs more than running it.
SELECT_JOB = select(JOBS).where(JOBS.c.id == bindparam("key"))
SELECT_JOB_LOCKED = SELECT_JOB.with_for_update()
SELECT_STEPS = select(STEPS).where(STEPS.c.job_id == bindparam("key")).order_by(STEPS.c.position)


def now():
    """The current time, timezone-aware in UTC, as every stored timestamp is."""
    return datetime.now(UTC)


def iso(value):
    """A timestamp as ISO 8601 text, None as None."""
    return value.isoformat() if value is not None else None


def parse_time(value):
    """An ISO 8601 timestamp from an agent's report as a datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def job_row(db, job_id, *, lock=False, owner=None):
    """The job's row as a dict (locked for the transaction with ``lock``).

    ``db`` is a session or a connection: both execute Core statements. With
    ``owner`` (a user name), a job of someone else answers as a missing one.
    """
    query = SELECT_JOB_LOCKED if lock else SELECT_JOB
    row = db.execute(query, {"key": job_id}).mappings().first()
    if row is None or (owner is not None and row["owner"] != owner):
        raise job_missing(job_id)
    return dict(row)


def step_rows(db, job_id):
    """The job's step rows as dicts, in adapter order."""
    return [dict(row) for row in db.execute(SELECT_STEPS, {"key": job_id}).mappings()]


def step_dict(step):
    """One step of a record, from a ``job_steps`` row mapping."""
    return {
        "id": step["step_id"],
        "state": step["state"],
        "start_time": iso(step["start_time"]),
        "end_time": iso(step["end_time"]),
        "exit_code": step["exit_code"],
    }


def summary(job):
    """The short form used by lists, from a ``jobs`` row mapping."""
    return {
        "job_id": job["id"],
        "p_id": job["project_id"],
        "c_id": job["package_id"],
        "owner": job["owner"],
        "rid": job["rid"],
        "state": job["state"],
        "step": job["step"],
        "state_name": job["state_name"],
        "name": job["name"],
        "ncpus": job["ncpus"],
        "sweep_id": job["sweep_id"],
        "error": job["error"],
        "submit_time": iso(job["submit_time"]),
        "start_time": iso(job["start_time"]),
        "end_time": iso(job["end_time"]),
    }


def record(job, steps):
    """The full ``job.query`` record of SPEC section 6, from row mappings."""
    out = summary(job)
    out.update(
        steps=[step_dict(s) for s in steps],
        params=job["params"],
        path=job["path"],
        para_name=job["para_name"],
        time_limit=job["time_limit"],
        tags=job["tags"],
        submission_id=job["submission_id"],
        metadata=job["meta"],
        environment=job["environment"],
        workdir=job["workdir"],
        stdout_path=job["stdout_path"],
        stderr_path=job["stderr_path"],
        pid=job["pid"],
        pid_start=job["pid_start"],
        process=job["process"],
        result=job["result"],
        slurm=job.get("slurm"),
        attempts=job["attempts"],
        retries=job["retries"],
    )
    return out


def event_dict(event):
    """One entry of ``job.events``, from a ``JobEvent``."""
    return {
        "time": iso(event.time),
        "state": event.state,
        "step": event.step,
        "message": event.message,
        "attempt": event.attempt,
    }
