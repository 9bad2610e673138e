"""Job lists: summaries newest first under filters, a page at a time.

A page is ``limit`` summaries after a job id (``after``), newest first. Each
filter has an index on ``(column, id)`` (migration 0009), so a page reads only
its own rows. Several states are read one state at a time and merged: under an
``IN`` list SQLite walks the whole table in id order, and with rare states
(QUEUED, RUNNING in a grown database) that is every row.
"""

import heapq

from sqlalchemy import select

from services.central.storage.records import JOBS
from services.common.errors import MirrorError
from services.common.jobstates import STATES

# The columns of a summary (records.summary): no parameters, results or paths.
SUMMARY_COLUMNS = [
    JOBS.c[name]
    for name in (
        "id",
        "project_id",
        "package_id",
        "owner",
        "rid",
        "state",
        "step",
        "state_name",
        "name",
        "ncpus",
        "sweep_id",
        "error",
        "submit_time",
        "start_time",
        "end_time",
    )
]


def parse_states(state):
    """The states of a comma-separated text, any case; refuse an unknown one."""
    states = [s.strip().upper() for s in str(state).split(",") if s.strip()]
    unknown = set(states) - set(STATES)
    if unknown:
        raise MirrorError(f"unknown job state {sorted(unknown)[0]!r}; one of {', '.join(STATES)}")
    return list(dict.fromkeys(states))


def page(ids, limit):
    """The summary columns of the rows ``ids`` (a query of job ids, newest first) selects.

    With a ``limit``, the ids come first, on their own: read from the filter's
    ``(column, id)`` index alone. Asked for every summary column at once,
    PostgreSQL may instead walk the primary key down from ``after`` and skip
    every job outside the filter on its way.
    """
    if limit is None:
        every = select(*SUMMARY_COLUMNS).order_by(JOBS.c.id.desc())
        return every if ids.whereclause is None else every.where(ids.whereclause)
    chosen = ids.limit(limit)
    return select(*SUMMARY_COLUMNS).where(JOBS.c.id.in_(chosen)).order_by(JOBS.c.id.desc())


def list_rows(db, filters, states=None, limit=100, after=None):
    """Summary rows (mappings) matching ``filters`` (``{column: value}``), newest first.

    ``states`` None: any state. ``after``: only jobs with a smaller id.
    """
    ids = select(JOBS.c.id).order_by(JOBS.c.id.desc())
    if after is not None:
        ids = ids.where(JOBS.c.id < after)
    for column, value in filters.items():
        ids = ids.where(JOBS.c[column] == value)
    if states is None:
        return list(db.execute(page(ids, limit)).mappings())
    parts = [list(db.execute(page(ids.where(JOBS.c.state == s), limit)).mappings()) for s in states]
    merged = heapq.merge(*parts, key=lambda row: row["id"], reverse=True)
    return list(merged)[:limit] if limit is not None else list(merged)
