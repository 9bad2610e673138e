"""The event log read back: job events after an id (with filters and owner), job counts by state."""

from sqlalchemy import func, select

from db.models import Job, JobEvent
from services.central.storage.retry import retry_disconnects
from services.common.events import job_event

# One page of events at most per read.
MAX_PAGE = 1000

EVENT_COLUMNS = (
    JobEvent.id,
    JobEvent.job_id,
    JobEvent.time,
    JobEvent.state,
    JobEvent.step,
    JobEvent.message,
    Job.project_id.label("p_id"),
    Job.sweep_id.label("sweep"),
    Job.rid,
    Job.owner,
)


@retry_disconnects
class EventLog:
    """Reads of ``job_events`` joined with their jobs, in the published event shape."""

    def __init__(self, sessionmaker):
        self.Session = sessionmaker

    def last_id(self):
        """The id of the newest job event (0 when there is none)."""
        with self.Session() as session:
            return int(session.scalar(select(func.max(JobEvent.id))) or 0)

    def after(self, after, filters=None, owner=None, limit=MAX_PAGE):
        """Job events with an id above ``after``, oldest first, at most ``limit``.

        ``filters`` are parsed ones (:func:`services.common.events.parse_filters`);
        ``owner`` limits them to that user's jobs (None: every job).
        """
        query = (
            select(*EVENT_COLUMNS)
            .join(Job, Job.id == JobEvent.job_id)
            .where(JobEvent.id > int(after))
            .order_by(JobEvent.id)
            .limit(max(1, min(int(limit), MAX_PAGE)))
        )
        filters = filters or {}
        if "sweep" in filters:
            query = query.where(Job.sweep_id.in_([int(v) for v in filters["sweep"]]))
        if "job" in filters:
            query = query.where(JobEvent.job_id.in_([int(v) for v in filters["job"]]))
        if "project" in filters:
            query = query.where(Job.project_id.in_([int(v) for v in filters["project"]]))
        if "state" in filters:
            query = query.where(JobEvent.state.in_(sorted(filters["state"])))
        if "machine" in filters:
            rids = [int(v) for v in filters["machine"] if v.isdigit()]
            query = query.where(Job.rid.in_(rids))
        if owner is not None:
            query = query.where(Job.owner == owner)
        return self._read(query)

    def by_ids(self, ids):
        """The job events of ``ids`` that exist now, oldest first."""
        query = (
            select(*EVENT_COLUMNS)
            .join(Job, Job.id == JobEvent.job_id)
            .where(JobEvent.id.in_(list(ids)))
            .order_by(JobEvent.id)
        )
        return self._read(query)

    def _read(self, query):
        with self.Session() as session:
            return [job_event(row) for row in session.execute(query).mappings()]

    def counts_by_state(self, owner=None):
        """``{state: number of jobs}`` (only ``owner``'s jobs when given)."""
        query = select(Job.state, func.count()).group_by(Job.state)
        if owner is not None:
            query = query.where(Job.owner == owner)
        with self.Session() as session:
            return {state: int(count) for state, count in session.execute(query)}
