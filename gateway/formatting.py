"""Slurm-style answers: a ``job.query`` record as the seeds' query answer, and ``/health``."""

from datetime import UTC, datetime

from services.common.jobstates import (
    COMPLETED,
    FAILED,
    KILLED,
    PREPARING,
    QUEUED,
    READY,
    RUNNING,
)

DATA_SOURCE = "API"
UNLIMITED = "UNLIMITED"

# Mirror job states -> the five REST states. READY is between steps (or just
# before the results are recovered): the job has not finished, so RUNNING.
STATES = {
    QUEUED: "PENDING",
    PREPARING: "RUNNING",
    READY: "RUNNING",
    RUNNING: "RUNNING",
    COMPLETED: "COMPLETED",
    FAILED: "FAILED",
    KILLED: "CANCELLED",
}

_MACHINE_FIELDS = (
    "rid",
    "name",
    "online",
    "slots",
    "running",
    "used_cores",
    "queued",
    "tags",
    "autorun",
    "last_heartbeat",
)


def rest_state(job):
    return STATES.get(job.get("state"), "PENDING")


def parse_instant(value):
    if not value:
        return None
    stamp = datetime.fromisoformat(value)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def utc_text(value):
    """ISO 8601 UTC to the second, as the seeds show it: ``2025-11-07T10:20:30Z``."""
    stamp = parse_instant(value)
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else None


def format_elapsed(seconds):
    """Slurm's ``D-HH:MM:SS``: ``0-00:05:20``."""
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def format_limit(minutes):
    """Slurm's time limit display: ``30:00``, ``2:00:00``, ``1-00:00:00``, ``UNLIMITED``."""
    if minutes is None:
        return UNLIMITED
    seconds = max(round(float(minutes) * 60), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{mins:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{mins:02d}:{secs:02d}"
    return f"{mins}:{secs:02d}"


def elapsed_seconds(job, now=None):
    """From the start to the end, or to ``now`` while the job runs; 0 before it starts."""
    start = parse_instant(job.get("start_time"))
    if start is None:
        return 0
    end = parse_instant(job.get("end_time")) or now or datetime.now(UTC)
    return (end - start).total_seconds()


def exit_code(job):
    """Slurm's ``exit:signal`` of the job's step, ``":"`` while there is none."""
    steps = job.get("steps") or []
    step = next((s for s in steps if s["id"] == job.get("step")), steps[-1] if steps else None)
    code = step.get("exit_code") if step else None
    if code is None:
        return ":"
    return f"{code}:0" if code >= 0 else f"0:{-code}"


def job_response(job, logs=None, node="", now=None):
    """The seed's query answer from a ``job.query`` record and its step's logs."""
    meta = job.get("metadata") or {}
    logs = logs or {}
    account = meta.get("account")
    submit = utc_text(job.get("submit_time"))
    # A job of a Slurm-executor machine: its latest step's batch job.
    slurm = job.get("slurm") or {}
    answer = {
        "job_id": str(job["job_id"]),
        "state": rest_state(job),
        "error_msg": job.get("error"),
        "time": {
            "submit_time": submit,
            "start_time": utc_text(job.get("start_time")),
            "end_time": utc_text(job.get("end_time")),
            "eligible_time": submit,
            "elapsed_time": format_elapsed(elapsed_seconds(job, now)),
            "limit_time": format_limit(job.get("time_limit")),
        },
        "job_log": {"stdout": logs.get("stdout", ""), "stderr": logs.get("stderr", "")},
        "detail": {
            "job_name": job.get("name") or job.get("state_name") or "",
            "user": account,
            "partition": slurm.get("partition") or meta.get("partition") or "default",
            "allocated_cpus": int(job.get("ncpus") or 1),
            "allocated_nodes": 1,
            "node_list": slurm.get("nodelist") or node,
            "exit_code": exit_code(job),
            "work_dir": job.get("workdir") or job.get("path") or "",
            "data_source": meta.get("data_source") or DATA_SOURCE,
            "account": account,
        },
    }
    if slurm.get("job_id"):
        answer["detail"]["slurm_job_id"] = str(slurm["job_id"])
    return answer


def health_report(machines=None, error=None):
    """``(http_status, body)`` of ``/health`` from ``machine.list``'s answer or a failure.

    ``error`` is ``("broker", message)`` when central did not answer over RPC,
    ``("database", message)`` when it answered with an error.
    """
    broker = {"ok": True, "error": None}
    database = {"ok": True, "error": None}
    if error is not None:
        where, message = error
        if where == "broker":
            broker = {"ok": False, "error": message}
            database = {"ok": False, "error": "not checked: central services not reached"}
        else:
            database = {"ok": False, "error": message}
    listed = [{key: m.get(key) for key in _MACHINE_FIELDS} for m in machines or []]
    online = sum(1 for m in listed if m["online"])
    reachable = broker["ok"] and database["ok"]
    body = {
        "status": "ok" if reachable and online else "degraded",
        "service": "mirror-gateway",
        "broker": broker,
        "database": database,
        "machines": {"online": online, "total": len(listed), "list": listed},
    }
    return (200 if reachable else 503), body
