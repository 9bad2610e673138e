"""One agent report applied to a job: checks, state transition, step changes and events.

Core statements on the transaction's connection, not the ORM: a report runs
several times per job and the unit of work costs more than the SQL itself.
"""

import logging

from sqlalchemy import bindparam, insert, select, update

from services.central.storage import policies
from services.central.storage.records import (
    EVENTS,
    JOBS,
    STEPS,
    now,
    parse_time,
    record,
    step_rows,
)
from services.common.errors import MirrorError, job_missing
from services.common.jobstates import (
    CHANGE_KEYS,
    FINAL,
    PENDING,
    PREPARING,
    QUEUED,
    REPORTABLE,
    RUNNING,
    STATES,
    STEP_RESET,
)

log = logging.getLogger(__name__)

# Built once, like the reads in records.py; their SET clauses come from the
# parameters given (the columns that change).
UPDATE_JOB = update(JOBS).where(JOBS.c.id == bindparam("key"))
UPDATE_STEP = update(STEPS).where(STEPS.c.id == bindparam("key"))
INSERT_EVENTS = insert(EVENTS)
# The job's row, locked, with its sweep's throttle in the same round trip:
# every claim and every end of a sweep's job needs both.
SELECT_REPORTED = (
    select(
        JOBS,
        select(policies.SWEEPS.c.max_running)
        .where(policies.SWEEPS.c.id == JOBS.c.sweep_id)
        .scalar_subquery()
        .label(policies.SWEEP_LIMIT),
    )
    .where(JOBS.c.id == bindparam("key"))
    .with_for_update(of=JOBS)
)


def reported_row(db, job_id):
    """The job's row locked for the transaction, with ``sweep_limit`` (None: no throttle)."""
    row = db.execute(SELECT_REPORTED, {"key": job_id}).mappings().first()
    if row is None:
        raise job_missing(job_id)
    return dict(row)


def check_owner(job, rid):
    """Refuse a machine acting on a job not placed on it (``rid`` None: central itself).

    A job waiting for a machine belongs to none: no machine may claim or
    report on it until the reconciler places it.
    """
    if rid is None:
        return
    if job["rid"] is None:
        raise MirrorError(f"job {job['id']} is waiting for a resource machine, not {rid}")
    if job["rid"] != rid:
        raise MirrorError(f"job {job['id']} belongs to resource machine {job['rid']}, not {rid}")


def check_attempt(job, attempt):
    """Refuse a report made under an attempt that a later claim superseded.

    ``attempt`` None (a manual or older caller) names no attempt and passes.
    """
    if attempt is not None and attempt != job["attempts"]:
        raise MirrorError(
            f"job {job['id']} attempt {attempt} is superseded by attempt {job['attempts']}"
        )


def event(job_id, stamp, state, step, message, attempt=None):
    """A ``job_events`` row."""
    return {
        "job_id": job_id,
        "time": stamp,
        "state": state,
        "step": step,
        "message": message,
        "attempt": attempt,
    }


def step_event(job_id, stamp, state, step_id, fields, attempt=None):
    """The event of a step's change of state, with its exit code when it has one."""
    exit_code = fields.get("exit_code")
    suffix = f" (exit code {exit_code})" if exit_code is not None else ""
    message = f"step {step_id} {fields['state']}{suffix}"
    return event(job_id, stamp, state, step_id, message, attempt)


def event_time(fields, stamp):
    """When a step's change happened: a step's end at its own end time, else ``stamp``.

    A deferred report carries several steps' runs at once: stamping their ends
    with its arrival would put one step's end after the next one's start.
    """
    if fields["state"] != RUNNING and fields.get("end_time"):
        return parse_time(fields["end_time"])
    return stamp


def same_columns(step_sets):
    """``{row id: values}`` as lists of parameter sets that set the same columns.

    Each list runs as one executemany; a report usually sets the same
    columns of every step it names.
    """
    groups = {}
    for row_id, values in step_sets.items():
        groups.setdefault(tuple(sorted(values)), []).append({"key": row_id, **values})
    return list(groups.values())


def step_changes(job, steps, changes, stamp, attempt=None):
    """``({step row id: new values}, [step events])`` of a report made under ``attempt``."""
    step_sets = {}
    if changes.get("reset_steps"):
        step_sets = {step["id"]: dict(STEP_RESET) for step in steps}
    by_name = {step["step_id"]: step for step in steps}
    state_now = changes["state"] if "state" in changes else job["state"]
    events = []
    for step_id, fields in (changes.get("steps") or {}).items():
        step = by_name.get(step_id)
        if step is None:
            raise MirrorError(f"job {job['id']} has no step '{step_id}'")
        values = step_sets.setdefault(step["id"], {})
        was = values.get("state", step["state"])
        if "state" in fields and fields["state"] != was:
            if was == PENDING and fields["state"] != RUNNING and fields.get("start_time"):
                # A short step the agent reports only once it ended (autorun):
                # its run still gets its event, at the time it started.
                started = parse_time(fields["start_time"])
                running = {"state": RUNNING}
                events.append(step_event(job["id"], started, RUNNING, step_id, running, attempt))
            values["state"] = fields["state"]
            when = event_time(fields, stamp)
            events.append(step_event(job["id"], when, state_now, step_id, fields, attempt))
        if "exit_code" in fields:
            values["exit_code"] = fields["exit_code"]
        for key in ("start_time", "end_time"):
            if key in fields:
                values[key] = parse_time(fields[key])
    return {k: v for k, v in step_sets.items() if v}, events


def transition(job, new_state, changes, stamp):
    """The columns a change of state sets besides ``state`` itself."""
    sets = {"state": new_state}
    if new_state == PREPARING and job["state"] == QUEUED:
        sets["claimed_at"] = stamp
        sets["attempts"] = job["attempts"] + 1
    if new_state in FINAL:
        sets.update(end_time=stamp, pid=None, pid_start=None)
    elif job["state"] in FINAL:
        # A finished job built again starts a new run.
        sets["end_time"] = None
        if "error" not in changes:
            sets["error"] = None
    return sets


def check_changes(job_id, changes):
    """Refuse a report with fields or a state outside the vocabulary of jobstates."""
    unknown = set(changes) - CHANGE_KEYS
    if unknown:
        raise MirrorError(f"report for job {job_id} has unknown fields: {sorted(unknown)}")
    new_state = changes.get("state")
    if new_state and new_state not in STATES:
        raise MirrorError(f"unknown job state {new_state!r}")


def apply_report(db, job_id, rid, changes, expect, attempt=None, stale=None, released=None):
    """Apply one report inside the caller's transaction on connection ``db``; answer the record.

    ``changes`` may hold ``state``, ``message``, ``steps`` (``{step_id:
    {state, exit_code, start_time, end_time}}``), ``reset_steps`` and the
    fields in ``REPORTABLE``. Every state or step change appends an event,
    which records the attempt it happened under. ``attempt`` (the claim the
    reporter works under) must be the job's current one. ``stale`` (how long
    a machine stays online after its heartbeat) lets a retry go at once to
    another machine with room (`policies.maybe_retry`).
    Every check comes before the first write, so a refused report writes nothing.
    The ``(job_id, rid, ncpus)`` entries of jobs to publish once committed (a
    throttled sweep's released jobs, a retry placed elsewhere) are appended to
    ``released`` (a list).
    """
    check_changes(job_id, changes)
    new_state = changes.get("state")
    stamp = now()
    job = reported_row(db, job_id)
    # The attempt first: a superseded reporter learns so whoever holds the job now.
    check_attempt(job, attempt)
    check_owner(job, rid)
    if expect and job["state"] not in expect:
        raise MirrorError(f"job {job_id} is {job['state']}, expected {' or '.join(expect)}")
    if new_state == PREPARING and job["state"] == QUEUED:
        policies.check_throttle(db, job)
    steps = step_rows(db, job_id)
    sets = {key: changes[key] for key in REPORTABLE & set(changes)}
    if isinstance(changes.get("slurm"), dict):
        sets["slurm_id"] = changes["slurm"].get("job_id")
    if changes.get("reset_steps"):
        # A rebuilt directory starts a new run: its time limit counts from its own
        # first step. First, so that a run reported whole in one batch keeps its times.
        sets.update(start_time=None, end_time=None)
    if new_state and new_state != job["state"]:
        sets.update(transition(job, new_state, changes, stamp))
    # A claim's own events belong to the attempt it starts.
    current = sets.get("attempts", job["attempts"]) or None
    step_sets, events = step_changes(job, steps, changes, stamp, current)
    if changes.get("reset_steps") and "result" not in changes:
        sets["result"] = {}
    step_now = sets.get("step", job["step"])
    message = changes.get("message", "")
    if new_state and new_state != job["state"]:
        events.append(event(job_id, stamp, new_state, step_now, message, current))
    elif message:
        events.append(event(job_id, stamp, job["state"], step_now, message, current))
    if sets.get("start_time", job["start_time"]) is None:
        # The job starts with its first step; a short one is reported only
        # once it ended, so the state may never read RUNNING.
        starts = [v["start_time"] for v in step_sets.values() if v.get("start_time")]
        if starts:
            sets["start_time"] = min(starts)
        elif new_state == RUNNING:
            sets["start_time"] = stamp
    if "process" in changes:
        sets["progress_at"] = stamp
    sets["updated"] = stamp
    db.execute(UPDATE_JOB, {"key": job_id, **sets})
    for rows in same_columns(step_sets):
        db.execute(UPDATE_STEP, rows)
    if events:
        db.execute(INSERT_EVENTS, events)
    old_state = job["state"]
    job.update(sets)
    steps = [{**s, **step_sets.get(s["id"], {})} for s in steps]
    if old_state != job["state"]:
        freed = policies.after_transition(db, job, old_state, steps, stamp, queued_again, stale)
        if released is not None:
            released.extend(freed)
    log.debug("Job<%s> report %s", job_id, changes)
    return record(job, steps)


def queued_again(db, job_id, stamp, message):
    """The event of a job queued again by its retry policy."""
    db.execute(INSERT_EVENTS, [event(job_id, stamp, QUEUED, None, message)])
