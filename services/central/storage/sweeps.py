"""Sweeps: reads and writes of the jobs of one dispatch taken together."""

import json
import logging
from itertools import islice

from sqlalchemy import delete, func, insert, select, update

from db.models import Cleanup
from services.central.storage import outbox, policies
from services.central.storage.policies import SWEEPS
from services.central.storage.records import EVENTS, JOBS, STEPS, iso, now, summary
from services.central.storage.retry import retry_disconnects
from services.central.storage.sweepindex import IndexCache
from services.central.storage.sweepstats import MAX_DISTINCT, estimate, failures
from services.central.storage.wheresql import prefilter
from services.common.errors import MirrorError, sweep_missing
from services.common.jobstates import ACTIVE, FINAL, QUEUED, STATES, STEP_RESET
from services.common.where import evaluate, parse

log = logging.getLogger(__name__)

# Jobs read per round when a ``where`` filter runs over a submission sweep's parameters.
SCAN = 20000
# Job ids read by id at most per round when a page of an indexed sweep fills up.
ROUND = 5000


def value_text(value):
    """A parameter value as the database reads it out of the JSON column (``->>``)."""
    return value if isinstance(value, str) else json.dumps(value)


def value_counts(states):
    """``{name: {value text: jobs}}`` of the parameters that vary across ``states``.

    Only those with at most ``MAX_DISTINCT`` values.
    """
    counts = {}
    for state in states:
        for name, value in state.params.items():
            entry = counts.setdefault(name, {})
            text = value_text(value)
            entry[text] = entry.get(text, 0) + 1
    return {name: values for name, values in counts.items() if 1 < len(values) <= MAX_DISTINCT}


def new_sweep(
    db, owner, stamp, kind="dispatch", p_id=None, c_id=None, para_name="", value_counts=None
):
    """Insert a ``sweeps`` row on connection ``db``; answer its id."""
    values = {
        "value_counts": value_counts,
        "owner": owner,
        "project_id": p_id,
        "package_id": c_id,
        "para_name": para_name,
        "kind": kind,
        "max_running": 0,
        "created": stamp,
    }
    return db.execute(insert(SWEEPS).values(**values).returning(SWEEPS.c.id)).scalar()


def sweep_dict(row, counts):
    """The short form of a sweep, with its job counts per state."""
    total = sum(counts.values())
    done = sum(n for state, n in counts.items() if state in FINAL)
    return {
        "sweep_id": row["id"],
        "owner": row["owner"],
        "p_id": row["project_id"],
        "c_id": row["package_id"],
        "para_name": row["para_name"],
        "kind": row["kind"],
        "max_running": row["max_running"],
        "created": iso(row["created"]),
        "total": total,
        "done": done,
        "states": {state: counts.get(state, 0) for state in STATES},
    }


def check_states(states):
    """Job states as a list, refusing an unknown one."""
    if isinstance(states, str):
        states = states.split(",")
    states = [str(s).strip().upper() for s in states or () if str(s).strip()]
    unknown = set(states) - set(STATES)
    if unknown:
        raise MirrorError(f"unknown job state {sorted(unknown)[0]!r}; one of {', '.join(STATES)}")
    return states


@retry_disconnects
class SweepStore:
    """Every read and write that takes a sweep's jobs together."""

    def __init__(self, sessionmaker):
        self.Session = sessionmaker
        # Shared by the workers of a service: each index is read once per process.
        self.indexes = IndexCache()

    def require(self, sweep_id, owner=None, kind=None):
        """The sweep's row; one of someone else (or of another ``kind``) answers as missing."""
        with self.Session() as session:
            return self._row(session, sweep_id, owner, kind)

    @staticmethod
    def _row(db, sweep_id, owner=None, kind=None):
        row = db.execute(select(SWEEPS).where(SWEEPS.c.id == sweep_id)).mappings().first()
        if row is None or (owner is not None and row["owner"] != owner):
            raise sweep_missing(sweep_id)
        if kind is not None and row["kind"] != kind:
            raise MirrorError(f"sweep {sweep_id} is a {row['kind']} sweep, not a {kind} one")
        return dict(row)

    @staticmethod
    def _counts(db, sweep_ids):
        out = {sweep_id: {} for sweep_id in sweep_ids}
        if sweep_ids:
            query = (
                select(JOBS.c.sweep_id, JOBS.c.state, func.count())
                .where(JOBS.c.sweep_id.in_(list(sweep_ids)))
                .group_by(JOBS.c.sweep_id, JOBS.c.state)
            )
            for sweep_id, state, count in db.execute(query):
                out[sweep_id][state] = count
        return out

    def list(self, owner=None, p_id=None, limit=100):
        """Sweeps newest first, with their counts per state."""
        query = select(SWEEPS).order_by(SWEEPS.c.id.desc()).limit(limit)
        if owner is not None:
            query = query.where(SWEEPS.c.owner == owner)
        if p_id is not None:
            query = query.where(SWEEPS.c.project_id == p_id)
        with self.Session() as session:
            rows = list(session.execute(query).mappings())
            counts = self._counts(session, [row["id"] for row in rows])
        return [sweep_dict(row, counts[row["id"]]) for row in rows]

    def query(self, sweep_id, owner=None):
        """The sweep with counts per state and step, progress, estimate and failure summary."""
        with self.Session() as session:
            row = self._row(session, sweep_id, owner)
            # One pass over the sweep's jobs: counts per state and step, and times.
            counts, steps, first, last = {}, {}, None, None
            for state, step, count, submitted, ended in session.execute(
                select(
                    JOBS.c.state,
                    JOBS.c.step,
                    func.count(),
                    func.min(JOBS.c.submit_time),
                    func.max(JOBS.c.end_time),
                )
                .where(JOBS.c.sweep_id == sweep_id)
                .group_by(JOBS.c.state, JOBS.c.step)
            ):
                counts[state] = counts.get(state, 0) + count
                if step is not None:
                    steps.setdefault(step, {})[state] = count
                first = submitted if first is None or submitted < first else first
                if ended is not None and (last is None or ended > last):
                    last = ended
            out = sweep_dict(row, counts)
            out["steps"] = steps
            out["first_submit"], out["last_end"] = iso(first), iso(last)
            out["running"] = sum(counts.get(state, 0) for state in ACTIVE)
            out["estimate"] = estimate(session, sweep_id, out)
            out["failures"] = failures(session, sweep_id, row["value_counts"])
        return out

    def jobs(self, sweep_id, owner=None, state=None, where=None, limit=100, after=0):
        """Summaries (with parameters) of the sweep's jobs past id ``after``, oldest first."""
        states = check_states(state) if state is not None else None
        tree = parse(where) if where is not None else None
        with self.Session() as session:
            row = self._row(session, sweep_id, owner)
            if tree is None:
                query = (
                    select(JOBS)
                    .where(JOBS.c.sweep_id == sweep_id, JOBS.c.id > after)
                    .order_by(JOBS.c.id)
                    .limit(limit)
                )
                if states is not None:
                    query = query.where(JOBS.c.state.in_(states))
                rows = session.execute(query).mappings()
            elif row["kind"] == "dispatch":
                index = self.indexes.get(session, sweep_id)
                found = index.ids_after(index.select(tree), after)
                rows = self._rows_of(session, found, states, limit)
            else:
                rows = self._scan(session, sweep_id, tree, states, limit, after)
            return [{**summary(row), "params": row["params"]} for row in rows]

    @staticmethod
    def _rows_of(db, ids, states, limit):
        """The rows of the first ``limit`` of ``ids`` (in order) that exist and are in ``states``.

        Read by id in growing rounds: a job deleted since the index was read,
        or in another state, makes room for the next.
        """
        out, size = [], limit
        ids = iter(ids)
        while len(out) < limit:
            part = list(islice(ids, size))
            if not part:
                break
            # By id alone (a job never changes sweep): a sweep condition would
            # make SQLite walk the sweep's index instead of the primary key.
            query = select(JOBS).where(JOBS.c.id.in_(part))
            if states is not None:
                query = query.where(JOBS.c.state.in_(states))
            out += db.execute(query.order_by(JOBS.c.id)).mappings().all()
            size = min(size * 4, ROUND)
        return out[:limit]

    @staticmethod
    def _scan(db, sweep_id, tree, states, limit, after):
        """The rows of a submission sweep that ``tree`` matches, read a round at a time.

        Jobs join a submission sweep one by one, so no index of it is kept.
        """
        # Only ids and parameters while filtering; the full rows of the matches after.
        narrow = prefilter(tree) if db.get_bind().dialect.name == "postgresql" else None
        found = []
        while len(found) < limit:
            query = (
                select(JOBS.c.id, JOBS.c.params)
                .where(JOBS.c.sweep_id == sweep_id, JOBS.c.id > after)
                .order_by(JOBS.c.id)
                .limit(SCAN)
            )
            if states is not None:
                query = query.where(JOBS.c.state.in_(states))
            if narrow is not None:
                query = query.where(narrow)
            rows = db.execute(query).all()
            found += [job_id for job_id, params in rows if evaluate(tree, params or {})]
            if len(rows) < SCAN:
                break
            after = rows[-1][0]
        found = found[:limit]
        if not found:
            return []
        query = select(JOBS).where(JOBS.c.id.in_(found)).order_by(JOBS.c.id)
        return db.execute(query).mappings().all()

    def targets(self, sweep_id, owner=None, states=None, where=None):
        """``(job_id, state)`` of the sweep's jobs in ``states`` that ``where`` matches."""
        tree = parse(where) if where is not None else None
        query = select(JOBS.c.id, JOBS.c.state, JOBS.c.params).where(JOBS.c.sweep_id == sweep_id)
        if states is not None:
            query = query.where(JOBS.c.state.in_(list(states)))
        with self.Session() as session:
            row = self._row(session, sweep_id, owner)
            if tree is not None and row["kind"] == "dispatch":
                index = self.indexes.get(session, sweep_id)
                keep = {index.ids[pos] for pos in index.select(tree)}
                query = query.with_only_columns(JOBS.c.id, JOBS.c.state)
                rows = session.execute(query.order_by(JOBS.c.id)).all()
                return [(job_id, state) for job_id, state in rows if job_id in keep]
            rows = session.execute(query.order_by(JOBS.c.id)).all()
        if tree is None:
            return [(job_id, state) for job_id, state, _ in rows]
        return [(job_id, state) for job_id, state, params in rows if evaluate(tree, params or {})]

    def retry(self, job_ids, states, reason):
        """Queue finished jobs again as a new attempt of the same ids; answer those queued.

        Unpinned jobs go back unplaced, for any machine with room; pinned ones
        to their machine's outbox. Their events stay: the history is kept.
        """
        stamp = now()
        queued = []
        with self.Session.begin() as session:
            db = session.connection()
            for part in outbox.chunks(job_ids):
                rows = db.execute(
                    select(JOBS.c.id, JOBS.c.rid, JOBS.c.pinned, JOBS.c.ncpus)
                    .where(JOBS.c.id.in_(part), JOBS.c.state.in_(list(states)))
                    .with_for_update()
                ).all()
                for job_id, rid, pinned, ncpus in rows:
                    keep_rid = rid if pinned else None
                    db.execute(
                        update(JOBS)
                        .where(JOBS.c.id == job_id)
                        .values(
                            state=QUEUED,
                            rid=keep_rid,
                            published_at=stamp if keep_rid is not None else None,
                            step=None,
                            path=None,
                            pid=None,
                            pid_start=None,
                            process={},
                            result={},
                            error=None,
                            start_time=None,
                            end_time=None,
                            updated=stamp,
                        )
                    )
                    if keep_rid is not None:
                        outbox.add(db, [(job_id, keep_rid, ncpus)], stamp)
                    queued.append(job_id)
                if rows:
                    ids = [r[0] for r in rows]
                    db.execute(update(STEPS).where(STEPS.c.job_id.in_(ids)).values(**STEP_RESET))
                    db.execute(
                        insert(EVENTS),
                        [
                            {"job_id": i, "time": stamp, "state": QUEUED, "message": reason}
                            for i in ids
                        ],
                    )
        return queued

    def running(self, sweep_id):
        """How many of the sweep's jobs an agent holds now."""
        with self.Session() as session:
            return policies.running_in(session, sweep_id)

    def throttle(self, sweep_id, max_running, owner=None):
        """Set the sweep's ``max_running``; answer the waiting jobs it now has room for."""
        stamp = now()
        with self.Session.begin() as session:
            db = session.connection()
            self._row(db, sweep_id, owner)
            db.execute(
                update(SWEEPS).where(SWEEPS.c.id == sweep_id).values(max_running=max_running)
            )
            return policies.release(db, sweep_id, stamp, lifted=True)

    def delete(self, sweep_id, owner=None):
        """Delete the sweep and its jobs, all finished or queued; answer how many jobs went.

        Machines remove the directories of deleted jobs when they are back
        (``cleanups``). Refused while any job is under way.
        """
        stamp = now()
        with self.Session.begin() as session:
            db = session.connection()
            self._row(db, sweep_id, owner)
            busy = db.execute(
                select(func.count()).where(JOBS.c.sweep_id == sweep_id, JOBS.c.state.in_(ACTIVE))
            ).scalar()
            if busy:
                raise MirrorError(
                    f"sweep {sweep_id} has {busy} job(s) under way; kill them first "
                    "or delete with force=1"
                )
            rows = db.execute(
                select(JOBS.c.id, JOBS.c.rid, JOBS.c.path).where(JOBS.c.sweep_id == sweep_id)
            ).all()
            ids = [r[0] for r in rows]
            for part in outbox.chunks(ids):
                db.execute(delete(EVENTS).where(EVENTS.c.job_id.in_(part)))
                db.execute(delete(STEPS).where(STEPS.c.job_id.in_(part)))
                db.execute(delete(outbox.OUTBOX).where(outbox.OUTBOX.c.job_id.in_(part)))
                db.execute(delete(JOBS).where(JOBS.c.id.in_(part)))
            cleanups = [
                {"job_id": job_id, "rid": rid, "created": stamp}
                for job_id, rid, path in rows
                if rid is not None and path is not None
            ]
            if cleanups:
                db.execute(insert(Cleanup.__table__), cleanups)
            db.execute(delete(SWEEPS).where(SWEEPS.c.id == sweep_id))
        self.indexes.drop(sweep_id)
        log.info("Sweep<%s> deleted with %d job(s)", sweep_id, len(ids))
        return len(ids)
