"""What a sweep's finished jobs say: a completion estimate and a failure summary.

Both are read with grouped queries: no job is loaded whole.
"""

from sqlalchemy import func, select

from services.central.storage.records import JOBS
from services.common.jobstates import FINAL

# Finished jobs whose durations make the completion estimate.
RECENT = 1000
# Parameter values listed per parameter in a failure summary.
MAX_VALUES = 50
# A parameter with more distinct values than this (one per job, say) says
# nothing about what the failures share: it is left out of the summary.
MAX_DISTINCT = 1000


def estimate(db, sweep_id, sweep):
    """Mean duration of recently finished jobs, and when the rest should be done."""
    rows = db.execute(
        select(JOBS.c.start_time, JOBS.c.end_time)
        .where(
            JOBS.c.sweep_id == sweep_id,
            JOBS.c.state.in_(list(FINAL)),
            JOBS.c.start_time.is_not(None),
            JOBS.c.end_time.is_not(None),
        )
        .order_by(JOBS.c.end_time.desc())
        .limit(RECENT)
    ).all()
    remaining = sweep["total"] - sweep["done"]
    if not rows:
        return {"mean_seconds": None, "remaining_seconds": None if remaining else 0}
    durations = [(end - start).total_seconds() for start, end in rows]
    mean = sum(durations) / len(durations)
    # Jobs run side by side: the rate at which these ended, not their mean length.
    span = (rows[0][1] - min(start for start, _ in rows)).total_seconds()
    rate = len(rows) / span if span > 0 else None
    left = remaining / rate if rate else remaining * mean
    return {"mean_seconds": round(mean, 3), "remaining_seconds": round(left, 1)}


def failures(db, sweep_id, value_counts=None):
    """Failures grouped by error, and for each multi-state parameter the rate per value.

    ``value_counts`` (jobs per parameter value, counted at dispatch) leaves
    only the failed jobs to read; without it every job's value is grouped.
    """
    by_error = db.execute(
        select(JOBS.c.error, func.count())
        .where(JOBS.c.sweep_id == sweep_id, JOBS.c.state == "FAILED")
        .group_by(JOBS.c.error)
        .order_by(func.count().desc())
        .limit(20)
    ).all()
    out = {
        "by_error": [{"error": error or "", "count": count} for error, count in by_error],
        "by_parameter": {},
    }
    if not by_error:
        return out
    if value_counts is None:
        # Every job of a sweep has the same parameter names: those of its first.
        first = db.execute(
            select(JOBS.c.params).where(JOBS.c.sweep_id == sweep_id).order_by(JOBS.c.id).limit(1)
        ).scalar()
        names = sorted(first or {})
    else:
        names = sorted(value_counts)
    for name in names:
        # Grouped in the database on the parameter's text: no job is loaded.
        value = JOBS.c.params[name].as_string()
        query = select(value, func.count()).where(JOBS.c.sweep_id == sweep_id).group_by(value)
        failed = dict(db.execute(query.where(JOBS.c.state == "FAILED")).all())
        failed = {"" if v is None else str(v): n for v, n in failed.items()}
        if value_counts is not None:
            totals = value_counts[name]
        else:
            totals = {"" if v is None else str(v): n for v, n in db.execute(query).all()}
        if not 1 < len(totals) <= MAX_DISTINCT:
            continue
        entries = [
            {
                "value": v,
                "jobs": n,
                "failed": failed.get(v, 0),
                "rate": round(failed.get(v, 0) / n, 3),
            }
            for v, n in totals.items()
            if n
        ]
        entries.sort(key=lambda r: (-r["rate"], r["value"]))
        out["by_parameter"][name] = entries[:MAX_VALUES]
    return out
