"""The outbox: placed job ids still to publish on their machine's queue.

Every placement writes its rows in the transaction that places the jobs
(``add``), so what must be queued is in the database before anyone is told;
the publisher (``services/central/publisher.py``) reads them (``pending``)
and deletes them once the broker has them (``done``, ``done_jobs``).
"""

from sqlalchemy import delete, func, insert, select, update

from db.models import Job, OutboxEntry
from services.central.storage import bulkinsert
from services.central.storage.records import JOBS, now
from services.central.storage.retry import retry_disconnects
from services.common.jobstates import QUEUED

OUTBOX = OutboxEntry.__table__
INSERT_OUTBOX = insert(OUTBOX)

# Ids per IN list: well under SQLite's limit of bound parameters.
CHUNK = 5000


def add(db, entries, stamp):
    """Insert ``(job_id, rid, ncpus)`` outbox rows on connection ``db``, in its transaction."""
    if not entries:
        return
    if bulkinsert.supported(db):
        bulkinsert.insert_rows(db, OUTBOX, {"created": stamp}, ("job_id", "rid", "ncpus"), entries)
    else:
        db.execute(
            INSERT_OUTBOX,
            [
                {"job_id": job_id, "rid": rid, "ncpus": ncpus, "created": stamp}
                for job_id, rid, ncpus in entries
            ],
        )


def chunks(ids):
    """``ids`` in lists short enough for one IN clause."""
    ids = list(ids)
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


@retry_disconnects
class Outbox:
    """Reads and deletes of the outbox, and the republication of old placements."""

    def __init__(self, sessionmaker):
        self.Session = sessionmaker

    def pending(self, limit=10000, older_than=None):
        """The oldest outbox rows (created before ``older_than``) as ``(entry id, job_id, rid, ncpus)``."""
        with self.Session() as session:
            query = select(OUTBOX.c.id, OUTBOX.c.job_id, OUTBOX.c.rid, OUTBOX.c.ncpus)
            if older_than is not None:
                query = query.where(OUTBOX.c.created < older_than)
            return [tuple(r) for r in session.execute(query.order_by(OUTBOX.c.id).limit(limit))]

    def take(self, send, limit=10000, older_than=None):
        """Hand the oldest rows (created before ``older_than``) to ``send``, then delete them.

        One transaction: ``send`` gets ``(entry id, job_id, rid, ncpus)`` rows
        and the rows go only once it returned. On PostgreSQL the rows are
        locked and rows another drainer holds are skipped, so two central
        processes draining at once never publish one row twice. Answers how
        many rows went.
        """
        query = select(OUTBOX.c.id, OUTBOX.c.job_id, OUTBOX.c.rid, OUTBOX.c.ncpus)
        if older_than is not None:
            query = query.where(OUTBOX.c.created < older_than)
        query = query.order_by(OUTBOX.c.id).limit(limit).with_for_update(skip_locked=True)
        with self.Session.begin() as session:
            rows = [tuple(r) for r in session.execute(query)]
            if rows:
                send(rows)
                for part in chunks([entry_id for entry_id, _, _, _ in rows]):
                    session.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(part)))
        return len(rows)

    def done(self, entry_ids):
        """Delete the published outbox rows ``entry_ids``."""
        with self.Session.begin() as session:
            for part in chunks(entry_ids):
                session.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(part)))

    def done_jobs(self, job_ids):
        """Delete the outbox rows of jobs ``job_ids``, just published by their placer."""
        with self.Session.begin() as session:
            for part in chunks(job_ids):
                session.execute(delete(OUTBOX).where(OUTBOX.c.job_id.in_(part)))

    def count(self):
        """How many job ids wait to be published."""
        with self.Session() as session:
            return session.scalar(select(func.count()).select_from(OUTBOX))

    def republish(self, rids, older_than, limit=10000):
        """Queue again the QUEUED jobs of machines ``rids`` last published before ``older_than``.

        Jobs with a row still in the outbox are left alone. Answers the
        number of jobs put back in the outbox.
        """
        if not rids:
            return 0
        stamp = now()
        pending = select(OUTBOX.c.job_id).where(OUTBOX.c.job_id == JOBS.c.id).exists()
        query = (
            select(JOBS.c.id, JOBS.c.rid, JOBS.c.ncpus)
            .where(
                JOBS.c.state == QUEUED,
                JOBS.c.rid.in_(list(rids)),
                (JOBS.c.published_at < older_than) | JOBS.c.published_at.is_(None),
                ~pending,
            )
            .order_by(JOBS.c.id)
            .limit(limit)
        )
        with self.Session.begin() as session:
            db = session.connection()
            entries = [tuple(r) for r in db.execute(query)]
            for part in chunks([job_id for job_id, _, _ in entries]):
                db.execute(update(Job).where(Job.id.in_(part)).values(published_at=stamp))
            add(db, entries, stamp)
        return len(entries)
