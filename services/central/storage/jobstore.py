"""Job records: bulk creation, reads, reports and the reconciler's moves."""

import logging

from sqlalchemy import bindparam, delete, func, select, update

from db.models import CalcPackage, Cleanup, Job, JobEvent, JobStep
from services.central.storage import outbox
from services.central.storage.creation import insert_jobs
from services.central.storage.joblists import list_rows, parse_states
from services.central.storage.records import (
    JOBS,
    STEPS,
    event_dict,
    job_row,
    now,
    record,
    step_rows,
    summary,
)
from services.central.storage.retry import retry_disconnects
from services.central.storage.sweeps import new_sweep
from services.central.storage.transitions import INSERT_EVENTS, apply_report, check_owner
from services.common.errors import MirrorError, job_missing, package_missing
from services.common.identity import LOCAL_NAME
from services.common.jobstates import ACTIVE, KILLED, QUEUED, STEP_RESET

log = logging.getLogger(__name__)

PACKAGE_FILE = select(CalcPackage.ftp_path).where(CalcPackage.id == bindparam("key"))


@retry_disconnects
class JobStore:
    """Jobs, steps, events; ``stale_after`` (`elsewhere.stale_after`) places retries at once."""

    def __init__(self, sessionmaker, stale_after=None):
        self.Session, self.stale_after = sessionmaker, stale_after

    # -- creation ----------------------------------------------------------
    def create(
        self,
        p_id,
        c_id,
        para_name,
        states,
        step_ids,
        placements,
        tags=(),
        extra=None,
        owner=LOCAL_NAME,
        within=None,
        pinned=False,
        sweep=None,
    ):
        """Insert one job per state (with its steps and first event); return the ids.

        ``placements`` gives the resource machine of each state (None: not placed);
        each placed job gets its outbox row in the same transaction.
        ``extra`` holds column values shared by every job (a script submission's);
        ``owner`` is the user the jobs belong to; ``pinned`` jobs wait for their
        machine; ``within(connection, ids)`` runs in the same transaction (it
        records the request that created them). ``sweep`` is the id of the
        sweep the jobs join, or the ``sweeps`` columns of a new one (made in
        the same transaction), or None.
        """
        stamp = now()
        shared = {
            "project_id": p_id,
            "package_id": c_id,
            "para_name": para_name,
            "tags": list(tags),
            "owner": owner,
            "pinned": bool(pinned),
            "state": QUEUED,
            "process": {},
            "result": {},
            "attempts": 0,
            "submit_time": stamp,
            "updated": stamp,
            **(extra or {}),
        }
        # One tuple of the columns in ``creation.VARYING`` per job.
        varying = [
            (
                state.index,
                state.name,
                state.params,
                int(state.params.get("NCPUS", 1)),
                state.params.get("TIME_LIMIT"),
                rid,
                stamp if rid is not None else None,
            )
            for state, rid in zip(states, placements, strict=True)
        ]
        with self.Session.begin() as session:
            # Core statements (or COPY) on the session's connection: the ORM's
            # bulk layer costs more than the SQL.
            db = session.connection()
            if isinstance(sweep, dict):
                sweep = new_sweep(db, owner, stamp, **sweep)
            shared["sweep_id"] = sweep
            ids = insert_jobs(db, shared, varying, step_ids, stamp)
            # The jobs' foreign key holds the package row now: a package deleted
            # since the caller looked at it shows here, without its file.
            if not db.execute(PACKAGE_FILE, {"key": c_id}).scalar():
                raise package_missing(c_id)
            if within is not None:
                within(db, ids)
            outbox.add(
                db,
                [
                    (job_id, v[5], v[3])
                    for job_id, v in zip(ids, varying, strict=True)
                    if v[5] is not None
                ],
                stamp,
            )
        return ids

    # -- reads -------------------------------------------------------------
    # ``owner`` (a user name) limits a read to that user's jobs: any other job
    # answers as a missing one. None (an admin, or the mesh itself) reads all.
    def get(self, job_id, owner=None):
        """The full record of job ``job_id``."""
        with self.Session() as session:
            return record(job_row(session, job_id, owner=owner), step_rows(session, job_id))

    def owned(self, job_id, owner=None):
        """Refuse, as missing, a job that does not exist or is not ``owner``'s."""
        with self.Session() as session:
            found = session.scalar(select(Job.owner).where(Job.id == job_id))
        if found is None or (owner is not None and found != owner):
            raise job_missing(job_id)

    def getrid(self, job_id, owner=None):
        """The resource machine of job ``job_id``; refused while it has none."""
        with self.Session() as session:
            row = session.execute(select(Job.rid, Job.owner).where(Job.id == job_id)).first()
        if row is None or (owner is not None and row.owner != owner):
            raise job_missing(job_id)
        if row.rid is None:
            raise MirrorError(f"job {job_id} is waiting for a resource machine")
        return row.rid

    def events(self, job_id, owner=None):
        """The events of job ``job_id``, oldest first (by time, then as recorded)."""
        with self.Session() as session:
            job_row(session, job_id, owner=owner)
            events = session.scalars(
                select(JobEvent)
                .where(JobEvent.job_id == job_id)
                .order_by(JobEvent.time, JobEvent.id)
            ).all()
            return [event_dict(e) for e in events]

    def list(
        self,
        state=None,
        rid=None,
        p_id=None,
        limit=100,
        owner=None,
        name=None,
        submission_id=None,
        slurm_id=None,
        after=None,
    ):
        """Job summaries, newest first, filtered by states (comma-separated), machine,
        project, owner, name, submission id and the Slurm job id of its latest step;
        ``after`` (a job id) starts the page after that job, with older ones."""
        filters = {
            column: value
            for column, value in (
                ("rid", rid),
                ("project_id", p_id),
                ("owner", owner),
                ("name", None if name is None else str(name)),
                ("submission_id", None if submission_id is None else str(submission_id)),
                ("slurm_id", slurm_id),
            )
            if value is not None
        }
        states = parse_states(state) if state is not None else None
        with self.Session() as session:
            return [summary(row) for row in list_rows(session, filters, states, limit, after)]

    def by_submission(self, submission_id):
        """``(job id, owner)`` of the job submitted with ``submission_id``, or None."""
        with self.Session() as session:
            row = session.execute(
                select(Job.id, Job.owner).where(Job.submission_id == submission_id)
            ).first()
        return tuple(row) if row is not None else None

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

    # -- reports -----------------------------------------------------------
    def report(self, job_id, rid, changes, expect=None, attempt=None, released=None):
        """Apply one agent report atomically; refuse it if the job is not in ``expect``.

        ``attempt`` (the claim the agent works under) must be the job's current one.
        ``released`` (a list) gets the jobs to publish once committed (`apply_report`).
        """
        stale = self.stale_after
        with self.Session.begin() as session:
            # The session's connection itself: no ORM execution layer for Core statements.
            return apply_report(
                session.connection(), job_id, rid, changes, expect, attempt, stale, released
            )

    def report_many(self, rid, reports, released=None):
        """Reports ``(job_id, changes, expect, attempt)`` of machine ``rid`` in one transaction.

        Answers one ``[code, value]`` each. A refused report writes nothing,
        so the others go on. ``released``: as `report`.
        """
        out, stale = [], self.stale_after
        with self.Session.begin() as session:
            db = session.connection()
            for job_id, changes, expect, attempt in reports:
                try:
                    out.append(
                        [
                            0,
                            apply_report(
                                db, job_id, rid, changes, expect, attempt, stale, released
                            ),
                        ]
                    )
                except MirrorError as exc:
                    out.append([-1, str(exc)])
        return out

    # -- other writes ------------------------------------------------------
    def remove(self, job_id, rid=None, states=None, owner=None):
        """Delete job ``job_id`` with its steps and events; answer its row as it was.

        ``rid`` None is central itself, which deletes only jobs in ``states``
        (when given) and records a cleanup for the machine of a job that has a
        directory: that machine removes it when it is back (``Registry.heartbeat``).
        """
        with self.Session.begin() as session:
            job = job_row(session, job_id, lock=True, owner=owner)
            check_owner(job, rid)
            if states is not None and job["state"] not in states:
                raise MirrorError(
                    f"job {job_id} is {job['state']}; its resource machine "
                    f"{job['rid']} has to stop it first"
                )
            session.execute(delete(JobEvent).where(JobEvent.job_id == job_id))
            session.execute(delete(JobStep).where(JobStep.job_id == job_id))
            session.execute(delete(Job).where(Job.id == job_id))
            session.execute(delete(outbox.OUTBOX).where(outbox.OUTBOX.c.job_id == job_id))
            if rid is None and job["rid"] is not None and job["path"] is not None:
                session.add(Cleanup(job_id=job_id, rid=job["rid"], created=now()))
        log.info("Job<%s> deleted", job_id)
        return job

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
        """Give an unplaced queued job its resource machine (and its outbox row)."""
        return bool(self.place_many([(job_id, rid, None)]))

    def place_many(self, entries):
        """Place ``(job_id, rid, ncpus)`` entries of unplaced queued jobs in one transaction.

        Answers the entries placed, with each job's own ncpus, which also
        went to the outbox; a job claimed, placed or deleted meanwhile is skipped.
        """
        stamp = now()
        placed = []
        with self.Session.begin() as session:
            db = session.connection()
            for job_id, rid, _ in entries:
                ncpus = db.execute(
                    update(JOBS)
                    .where(JOBS.c.id == job_id, JOBS.c.state == QUEUED, JOBS.c.rid.is_(None))
                    .values(rid=rid, published_at=stamp, updated=stamp)
                    .returning(JOBS.c.ncpus)
                ).scalar()
                if ncpus is not None:
                    placed.append((job_id, rid, ncpus))
            outbox.add(db, placed, stamp)
        return placed

    def unplace_queued(self, rid, reason):
        """Take the unpinned QUEUED jobs off machine ``rid``; answer their ids.

        They wait, unplaced, for the reconciler to place them elsewhere.
        """
        stamp = now()
        with self.Session.begin() as session:
            db = session.connection()
            ids = list(
                db.execute(
                    select(JOBS.c.id).where(
                        JOBS.c.rid == rid, JOBS.c.state == QUEUED, JOBS.c.pinned.is_(False)
                    )
                ).scalars()
            )
            for part in outbox.chunks(ids):
                db.execute(
                    update(JOBS)
                    .where(JOBS.c.id.in_(part), JOBS.c.state == QUEUED)
                    .values(rid=None, published_at=None, updated=stamp)
                )
                db.execute(delete(outbox.OUTBOX).where(outbox.OUTBOX.c.job_id.in_(part)))
            if ids:
                db.execute(
                    INSERT_EVENTS,
                    [
                        {"job_id": job_id, "time": stamp, "state": QUEUED, "message": reason}
                        for job_id in ids
                    ],
                )
        return ids

    def requeue(self, job_id, reason):
        """Put a claimed job back in the queue with its steps reset.

        An unpinned job is unplaced (the reconciler places it again); a pinned
        one stays on its machine and goes back to the outbox for it.
        """
        stamp = now()
        with self.Session.begin() as session:
            job = job_row(session, job_id, lock=True)
            if job["state"] not in ACTIVE:
                return False
            rid = job["rid"] if job["pinned"] else None
            session.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id)
                .values(
                    state=QUEUED,
                    rid=rid,
                    published_at=stamp if rid is not None else None,
                    step=None,
                    path=None,
                    pid=None,
                    pid_start=None,
                    slurm=None,
                    slurm_id=None,
                    process={},
                    result={},
                    updated=stamp,
                )
            )
            session.execute(update(STEPS).where(STEPS.c.job_id == job_id).values(**STEP_RESET))
            session.execute(
                INSERT_EVENTS,
                [{"job_id": job_id, "time": stamp, "state": QUEUED, "message": reason}],
            )
            if rid is not None:
                outbox.add(session.connection(), [(job_id, rid, job["ncpus"])], stamp)
            return True
