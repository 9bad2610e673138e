"""New jobs with their steps and first event, written in bulk on one connection.

PostgreSQL gets one JSON-fed statement per table, with the ids reserved up
front (``bulkinsert``); SQLite, where a statement costs no round trip, gets
multi-row Core inserts.
"""

from sqlalchemy import insert, text

from services.central.storage import bulkinsert
from services.central.storage.records import EVENTS, JOBS, STEPS
from services.common.jobstates import PENDING, QUEUED

# The job columns that differ between the jobs of one creation, in the order
# of the tuples ``insert_jobs`` takes.
VARYING = ("state_index", "state_name", "params", "ncpus", "time_limit", "rid", "published_at")

INSERT_STEPS = insert(STEPS)
INSERT_EVENTS = insert(EVENTS)
STEPS_FROM_IDS = text(
    "INSERT INTO job_steps (job_id, position, step_id, state) "
    "SELECT j.id, t.pos - 1, t.step_id, :pending "
    "FROM unnest(CAST(:ids AS integer[])) AS j(id) "
    "CROSS JOIN unnest(CAST(:steps AS text[])) WITH ORDINALITY AS t(step_id, pos)"
)
EVENTS_FROM_IDS = text(
    "INSERT INTO job_events (job_id, time, state, message) "
    "SELECT j.id, :stamp, :queued, 'dispatched' FROM unnest(CAST(:ids AS integer[])) AS j(id)"
)


def insert_jobs(db, shared, varying, step_ids, stamp):
    """Insert one QUEUED job per ``varying`` tuple, with its PENDING steps and its event.

    ``shared`` holds the job columns all of them have. Answers the new ids,
    ascending, in the order of ``varying``.
    """
    if bulkinsert.supported(db):
        ids = bulkinsert.reserve_ids(db, JOBS, len(varying))
        bulkinsert.insert_rows(
            db, JOBS, shared, ("id", *VARYING), ((i, *v) for i, v in zip(ids, varying, strict=True))
        )
        # Steps and events follow from the ids alone: the server makes their rows.
        params = {"ids": bulkinsert.int_array(ids), "stamp": stamp, "queued": QUEUED}
        db.execute(STEPS_FROM_IDS, {**params, "steps": list(step_ids), "pending": PENDING})
        db.execute(EVENTS_FROM_IDS, params)
        return ids
    rows = [{**shared, **dict(zip(VARYING, v, strict=True))} for v in varying]
    # The ids come back in the order of ``rows``.
    returning = insert(JOBS).returning(JOBS.c.id, sort_by_parameter_order=True)
    ids = list(db.execute(returning, rows).scalars())
    db.execute(
        INSERT_STEPS,
        [
            {"job_id": job_id, "position": pos, "step_id": step_id, "state": PENDING}
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
