"""Machine API answers: the seed's envelope, and jobs and machines in Slurm's words and columns.

Job states come from :data:`gateway.formatting.STATES` (the REST API's Slurm
states), written as ``squeue --long`` does: ``Pending``, ``Running``,
``Completed``, ``Failed``, ``Cancelled``.
"""

from datetime import UTC, datetime

from services.common.jobstates import PENDING

from .formatting import elapsed_seconds, exit_code, format_limit, parse_instant, rest_state
from .web import Shape, rest_response

#: The partition of a job that names none, and of every local-executor machine.
PARTITION = "work"
#: ``squeue``'s reason for a pending job: Mirror's queued job waits for free cores.
PENDING_REASON = "(Resources)"


def envelope_ok(status, output):
    """``{"status": "OK", "output": ..., "status_code": 200, "error": ""}``."""
    body = {"status": "OK", "output": output, "status_code": status, "error": ""}
    return rest_response(status, body)


def envelope_error(exc):
    """``{"status": "ERROR", "output": "", "status_code": <code>, "error": message}``."""
    body = {"status": "ERROR", "output": "", "status_code": exc.status, "error": exc.message}
    return rest_response(exc.status, body, exc.headers)


NEWT = Shape(envelope_ok, envelope_error)


def slurm_status(job):
    """``Pending``, ``Running``, ``Completed``, ``Failed`` or ``Cancelled``."""
    return rest_state(job).capitalize()


def queue_time(job, now=None):
    """``squeue``'s ``TIME``: ``0:00``, ``5:20``, ``1:02:03``, ``1-00:00:00``."""
    return format_limit(elapsed_seconds(job, now) / 60)


def sacct_time(job, now=None):
    """``sacct``'s ``Elapsed``: ``00:00:00``, ``1-02:03:04``."""
    seconds = max(int(elapsed_seconds(job, now)), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def shown_id(job):
    """The id the machine API shows: Slurm's on a Slurm machine once Slurm has the job."""
    batch = job.get("slurm") or {}
    return str(batch["job_id"]) if batch.get("job_id") else str(job["job_id"])


def node_list(job, machine_name):
    """The node (Slurm's) or machine running the job, or the reason it waits."""
    if slurm_status(job) == "Pending":
        return PENDING_REASON
    return (job.get("slurm") or {}).get("nodelist") or machine_name


def partition_of(job):
    batch = job.get("slurm") or {}
    return batch.get("partition") or (job.get("metadata") or {}).get("partition") or PARTITION


def job_exitcode(job):
    """``exit:signal``; ``0:0`` before the job's step has ended, as ``sacct`` shows."""
    code = exit_code(job)
    return "0:0" if code == ":" else code


def tasks_of(job):
    """The job's steps that have started, one line each: ``<step> <status> <exit:signal>``."""
    lines = []
    for step in job.get("steps") or []:
        if step.get("state") == PENDING and not step.get("start_time"):
            continue
        code = step.get("exit_code")
        signal = "0:0" if code is None else (f"{code}:0" if code >= 0 else f"0:{-code}")
        lines.append(f"{step['id']} {step['state']} {signal}")
    return "\n".join(lines)


def queue_columns(jobs, machine_name, now=None):
    """``GET /api/job/<machine>``: the jobs column-wise, each column keyed by job id."""
    columns = {
        key: {}
        for key in ("status", "nodelist", "name", "partition", "user", "time", "nodes", "id")
    }
    for job in jobs:
        jid = shown_id(job)
        columns["status"][jid] = slurm_status(job)
        columns["nodelist"][jid] = node_list(job, machine_name)
        columns["name"][jid] = job.get("name") or ""
        columns["partition"][jid] = partition_of(job)
        columns["user"][jid] = job.get("owner") or ""
        columns["time"][jid] = queue_time(job, now)
        columns["nodes"][jid] = 1
        columns["id"][jid] = jid
    return columns


def job_columns(job, now=None):
    """``GET /api/job/<machine>/<jobid>``: one job, column-wise as ``sacct`` shows it."""
    jid = shown_id(job)
    return {
        "status": {jid: slurm_status(job)},
        "tasks": {jid: tasks_of(job)},
        "name": {jid: job.get("name") or ""},
        "partition": {jid: partition_of(job)},
        "time": {jid: sacct_time(job, now)},
        "nodes": {jid: 1},
        "id": {jid: jid},
        "exitcode": {jid: job_exitcode(job)},
    }


def heartbeat_age(machine, now=None):
    """Whole seconds since the machine's last heartbeat (None when it never sent one)."""
    stamp = parse_instant(machine.get("last_heartbeat"))
    if stamp is None:
        return None
    now = now or datetime.now(UTC)
    return max(int((now - stamp).total_seconds()), 0)


def health_of(machine, stalled=0):
    """0 offline; online, the share of its running jobs that are not stalled (1 with none)."""
    if not machine.get("online"):
        return 0.0
    running = int(machine.get("running") or 0)
    if running <= 0:
        return 1.0
    return round(max(running - stalled, 0) / running, 2)


def overview(machines, stalled=None, now=None):
    """``GET /api/job``: every machine's queue and cores, by name.

    A Slurm machine's come from its agent's latest sinfo/squeue probe (sent
    with its heartbeats), once it has taken one: the cluster's queue and cores.
    """
    stalled = stalled or {}
    out = {}
    for machine in machines:
        slots = int(machine.get("slots") or 0)
        used = int(machine.get("used_cores") or 0)
        entry = out[machine["name"]] = {
            "queue": {
                "PD": int(machine.get("queued") or 0),
                "R": int(machine.get("running") or 0),
                "time": heartbeat_age(machine, now),
                "health": health_of(machine, stalled.get(machine["rid"], 0)),
            },
            "info": {PARTITION: {"idle": max(slots - used, 0), "alloc": used}},
        }
        probe = machine.get("slurm") or {}
        if probe.get("taken"):
            queue = probe.get("queue") or {}
            now_s = (now or datetime.now(UTC)).timestamp()
            entry["queue"].update(
                PD=int(queue.get("PD", 0)),
                R=int(queue.get("R", 0)),
                time=max(int(now_s - float(probe["taken"])), 0),
            )
            entry["info"] = {
                name: {"idle": int(cores["idle"]), "alloc": int(cores["alloc"])}
                for name, cores in (probe.get("partitions") or {}).items()
            }
    return out
