"""Job records: bulk creation, the SPEC record shape, and conditional transitions."""

import logging
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, func, insert, select, update

from db.models import Job, JobEvent, JobStep
from services.central.retry import retry_disconnects
from services.common.errors import MirrorError, job_missing
from services.common.jobstates import (
    ACTIVE,
    CHANGE_KEYS,
    FINAL,
    KILLED,
    PREPARING,
    QUEUED,
    REPORTABLE,
    RUNNING,
    STATES,
    STEP_RESET,
)

log = logging.getLogger(__name__)

JOBS, STEPS, EVENTS = Job.__table__, JobStep.__table__, JobEvent.__table__


# The statements of ``report``, built once: it runs several times per job, and
# building a statement and its cache key cost more than running it.
SELECT_JOB = select(JOBS).where(JOBS.c.id == bindparam("key"))
SELECT_JOB_LOCKED = SELECT_JOB.with_for_update()
SELECT_STEPS = select(STEPS).where(STEPS.c.job_id == bindparam("key")).order_by(STEPS.c.position)
# Their SET clauses come from the parameters given (the columns that change).
UPDATE_JOB = update(JOBS).where(JOBS.c.id == bindparam("key"))
UPDATE_STEP = update(STEPS).where(STEPS.c.id == bindparam("key"))
INSERT_EVENTS = insert(EVENTS)
INSERT_STEPS = insert(STEPS)


def now():
    return datetime.now(UTC)


def iso(value):
    return value.isoformat() if value is not None else None


def parse_time(value):
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def step_dict(step):
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
        "rid": job["rid"],
        "state": job["state"],
        "step": job["step"],
        "state_name": job["state_name"],
        "name": job["name"],
        "ncpus": job["ncpus"],
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
        attempts=job["attempts"],
    )
    return out


def same_columns(step_sets):
    """``{row id: values}`` as lists of parameter sets that set the same columns.

    Each list runs as one executemany; a report usually sets the same
    columns of every step it names.
    """
    groups = {}
    for row_id, values in step_sets.items():
        groups.setdefault(tuple(sorted(values)), []).append({"key": row_id, **values})
    return list(groups.values())


def step_event(job_id, stamp, state, step_id, fields):
    exit_code = fields.get("exit_code")
    suffix = f" (exit code {exit_code})" if exit_code is not None else ""
    return {
        "job_id": job_id,
        "time": stamp,
        "state": state,
        "step": step_id,
        "message": f"step {step_id} {fields['state']}{suffix}",
    }


@retry_disconnects
class JobStore:
    """All reads and writes of jobs, their steps and their events."""

    def __init__(self, sessionmaker):
        self.Session = sessionmaker

    def _job(self, session, job_id, *, lock=False):
        """The job's row as a dict (locked for the transaction with ``lock``)."""
        query = SELECT_JOB_LOCKED if lock else SELECT_JOB
        row = session.execute(query, {"key": job_id}).mappings().first()
        if row is None:
            raise job_missing(job_id)
        return dict(row)

    def _steps(self, session, job_id):
        return [dict(row) for row in session.execute(SELECT_STEPS, {"key": job_id}).mappings()]

    # -- creation ----------------------------------------------------------
    def create(self, p_id, c_id, para_name, states, step_ids, placements, tags=(), extra=None):
        """Insert one job per state (with its steps and first event); return the ids.

        ``placements`` gives the resource machine of each state (None: not placed);
        ``extra`` holds column values shared by every job (a script submission's).
        """
        stamp = now()
        rows = [
            {
                "project_id": p_id,
                "package_id": c_id,
                "para_name": para_name,
                "state_index": state.index,
                "state_name": state.name,
                "params": state.params,
                "ncpus": int(state.params.get("NCPUS", 1)),
                "time_limit": state.params.get("TIME_LIMIT"),
                "tags": list(tags),
                "rid": rid,
                "state": QUEUED,
                "process": {},
                "result": {},
                "attempts": 0,
                "submit_time": stamp,
                "updated": stamp,
                **(extra or {}),
            }
            for state, rid in zip(states, placements, strict=True)
        ]
        with self.Session.begin() as session:
            # Core inserts on the session's connection: the ORM's bulk layer cost
            # more than the SQL. The ids come back in the order of ``rows``.
            db = session.connection()
            returning = insert(JOBS).returning(JOBS.c.id, sort_by_parameter_order=True)
            ids = list(db.execute(returning, rows).scalars())
            db.execute(
                INSERT_STEPS,
                [
                    {"job_id": job_id, "position": pos, "step_id": step_id, "state": "PENDING"}
                    for job_id in ids
                    for pos, step_id in enumerate(step_ids)
                ],
            )
            db.execute(
                INSERT_EVENTS,
                [
                    {"job_id": job_id, "time": stamp, "state": QUEUED, "message": "dispatched"}
                    for job_id in ids
                ],
            )
        return ids

    # -- reads -------------------------------------------------------------
    def get(self, job_id):
        with self.Session() as session:
            return record(self._job(session, job_id), self._steps(session, job_id))

    def getrid(self, job_id):
        with self.Session() as session:
            rid = session.scalar(select(Job.rid).where(Job.id == job_id))
            if rid is None:
                if session.get(Job, job_id) is None:
                    raise job_missing(job_id)
                raise MirrorError(f"job {job_id} is waiting for a resource machine")
            return rid

    def events(self, job_id):
        with self.Session() as session:
            self._job(session, job_id)
            events = session.scalars(
                select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
            ).all()
            return [
                {"time": iso(e.time), "state": e.state, "step": e.step, "message": e.message}
                for e in events
            ]

    def list(self, state=None, rid=None, p_id=None, limit=100):
        query = select(JOBS).order_by(JOBS.c.id.desc()).limit(limit)
        if state is not None:
            states = [s.strip().upper() for s in str(state).split(",") if s.strip()]
            unknown = set(states) - set(STATES)
            if unknown:
                raise MirrorError(
                    f"unknown job state {sorted(unknown)[0]!r}; one of {', '.join(STATES)}"
                )
            query = query.where(JOBS.c.state.in_(states))
        if rid is not None:
            query = query.where(JOBS.c.rid == rid)
        if p_id is not None:
            query = query.where(JOBS.c.project_id == p_id)
        with self.Session() as session:
            return [summary(row) for row in session.execute(query).mappings()]

    def counts_by_machine(self):
        """``{rid: {"running": n, "cores": c, "queued": q}}`` over unfinished jobs."""
        out = {}
        query = (
            select(Job.rid, Job.state, func.count(), func.coalesce(func.sum(Job.ncpus), 0))
            .where(Job.state.in_((QUEUED, *ACTIVE)), Job.rid.is_not(None))
            .group_by(Job.rid, Job.state)
        )
        with self.Session() as session:
            for rid, state, count, cores in session.execute(query):
                entry = out.setdefault(rid, {"running": 0, "cores": 0, "queued": 0})
                if state == QUEUED:
                    entry["queued"] += count
                else:
                    entry["running"] += count
                    entry["cores"] += int(cores)
        return out

    # -- writes ------------------------------------------------------------
    def report(self, job_id, rid, changes, expect=None):
        """Apply one agent report atomically; refuse it if the job is not in ``expect``.

        ``changes`` may hold ``state``, ``message``, ``steps`` (``{step_id:
        {state, exit_code, start_time, end_time}}``), ``reset_steps`` and the
        fields in ``REPORTABLE``. Every state or step change appends an event.
        Core statements, not the ORM: this runs several times per job and
        the unit of work cost more than the SQL itself.
        """
        with self.Session.begin() as session:
            # The session's connection itself: no ORM execution layer for Core statements.
            return self._report(session.connection(), job_id, rid, changes, expect)

    def report_many(self, rid, reports):
        """Reports ``(job_id, changes, expect)`` of machine ``rid`` in one transaction.

        Answers one ``[code, value]`` each. A refused report writes nothing
        (every check comes before the first write), so the others go on.
        """
        out = []
        with self.Session.begin() as session:
            db = session.connection()
            for job_id, changes, expect in reports:
                try:
                    out.append([0, self._report(db, job_id, rid, changes, expect)])
                except MirrorError as exc:
                    out.append([-1, str(exc)])
        return out

    def _report(self, db, job_id, rid, changes, expect):
        unknown = set(changes) - CHANGE_KEYS
        if unknown:
            raise MirrorError(f"report for job {job_id} has unknown fields: {sorted(unknown)}")
        new_state = changes.get("state")
        if new_state and new_state not in STATES:
            raise MirrorError(f"unknown job state {new_state!r}")
        stamp = now()
        job = self._job(db, job_id, lock=True)
        if rid is not None and job["rid"] is not None and job["rid"] != rid:
            raise MirrorError(f"job {job_id} belongs to resource machine {job['rid']}, not {rid}")
        if expect and job["state"] not in expect:
            raise MirrorError(f"job {job_id} is {job['state']}, expected {' or '.join(expect)}")
        steps = self._steps(db, job_id)
        sets = {key: changes[key] for key in REPORTABLE & set(changes)}
        step_sets, events = self._step_changes(job, steps, changes, stamp)
        if changes.get("reset_steps") and "result" not in changes:
            sets["result"] = {}
        step_now = sets.get("step", job["step"])
        message = changes.get("message", "")
        if new_state and new_state != job["state"]:
            sets.update(self._transition(job, new_state, changes, stamp))
            events.append(self._event(job_id, stamp, new_state, step_now, message))
        elif message:
            events.append(self._event(job_id, stamp, job["state"], step_now, message))
        if job["start_time"] is None:
            # The job starts with its first step; a short one is reported
            # only once it ended, so the state may never have read RUNNING.
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
        job.update(sets)
        log.debug("Job<%s> report %s", job_id, changes)
        return record(job, [{**s, **step_sets.get(s["id"], {})} for s in steps])

    @staticmethod
    def _event(job_id, stamp, state, step, message):
        return {"job_id": job_id, "time": stamp, "state": state, "step": step, "message": message}

    @staticmethod
    def _step_changes(job, steps, changes, stamp):
        """``({step row id: new values}, [step events])`` of a report."""
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
                if was == "PENDING" and fields["state"] != "RUNNING" and fields.get("start_time"):
                    # A short step the agent reported only once it ended (autorun):
                    # its run still gets its event, at the time it started.
                    started = {"state": "RUNNING"}
                    events.append(
                        step_event(
                            job["id"], parse_time(fields["start_time"]), RUNNING, step_id, started
                        )
                    )
                values["state"] = fields["state"]
                events.append(step_event(job["id"], stamp, state_now, step_id, fields))
            if "exit_code" in fields:
                values["exit_code"] = fields["exit_code"]
            for key in ("start_time", "end_time"):
                if key in fields:
                    values[key] = parse_time(fields[key])
        return {k: v for k, v in step_sets.items() if v}, events

    @staticmethod
    def _transition(job, new_state, changes, stamp):
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

    def remove(self, job_id, rid=None):
        with self.Session.begin() as session:
            job = self._job(session, job_id, lock=True)
            if rid is not None and job["rid"] is not None and job["rid"] != rid:
                raise MirrorError(
                    f"job {job_id} belongs to resource machine {job['rid']}, not {rid}"
                )
            session.execute(delete(JobEvent).where(JobEvent.job_id == job_id))
            session.execute(delete(JobStep).where(JobStep.job_id == job_id))
            session.execute(delete(Job).where(Job.id == job_id))
        log.info("Job<%s> deleted", job_id)

    def by_submission(self, submission_id):
        with self.Session() as session:
            return session.scalar(select(Job.id).where(Job.submission_id == submission_id))

    def cancel_queued(self, job_id, reason):
        """QUEUED -> KILLED in one conditional update; False if the job was not queued."""
        stamp = now()
        with self.Session.begin() as session:
            done = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == QUEUED)
                .values(state=KILLED, error=reason, end_time=stamp, updated=stamp)
            )
            if done.rowcount != 1:
                return False
            session.add(JobEvent(job_id=job_id, time=stamp, state=KILLED, message=reason))
            return True

    def place(self, job_id, rid):
        """Give an unplaced queued job its resource machine."""
        with self.Session.begin() as session:
            done = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == QUEUED)
                .values(rid=rid, updated=now())
            )
            return done.rowcount == 1

    def orphaned(self, rids):
        """Unfinished, claimed jobs of the machines in ``rids``."""
        with self.Session() as session:
            return list(
                session.scalars(
                    select(Job.id)
                    .where(Job.rid.in_(list(rids)), Job.state.in_(ACTIVE))
                    .order_by(Job.id)
                )
            )

    def requeue(self, job_id, reason):
        """Put a claimed job back in the queue, unplaced, with its steps reset."""
        stamp = now()
        with self.Session.begin() as session:
            job = self._job(session, job_id, lock=True)
            if job["state"] not in ACTIVE:
                return False
            session.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id)
                .values(
                    state=QUEUED,
                    rid=None,
                    step=None,
                    path=None,
                    pid=None,
                    pid_start=None,
                    process={},
                    result={},
                    updated=stamp,
                )
            )
            session.execute(update(STEPS).where(STEPS.c.job_id == job_id).values(**STEP_RESET))
            session.execute(
                insert(EVENTS),
                [{"job_id": job_id, "time": stamp, "state": QUEUED, "message": reason}],
            )
            return True
