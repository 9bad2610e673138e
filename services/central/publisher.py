"""The publisher: job ids from the outbox onto the queues of their machines.

A placement commits its jobs and their outbox rows together; its placer then
publishes them at once (``publish_placed``) and the reconciler's timer drains
whatever is left (``drain``): rows of a central stopped between the commit and
the publish, or of a publish the broker refused. A job published twice is
harmless: agents ignore an id they hold already, and a claim is conditional.
"""

import logging
from collections import defaultdict
from datetime import timedelta

import eventlet

from services.central.storage.records import now

log = logging.getLogger(__name__)


def publish(queues, entries):
    """Publish ``(job_id, rid, ncpus)`` entries, one batch per machine."""
    by_machine = defaultdict(list)
    for job_id, rid, ncpus in entries:
        by_machine[rid].append((job_id, ncpus))
    for rid, jobs in by_machine.items():
        queues.publish(rid, jobs)


def publish_placed(storage, queues, entries, delay=0):
    """Publish jobs just placed and committed, then delete their outbox rows.

    ``delay`` (``DEBUG.publish_delay``) holds the window between commit and
    publish open, so that tests can stop central inside it. Answers whether
    the jobs went out; when not, their rows wait for the next ``drain``.
    """
    if not entries:
        return True
    if delay:
        eventlet.sleep(float(delay))
    try:
        publish(queues, entries)
        storage.outbox.done_jobs([job_id for job_id, _, _ in entries])
    # The jobs are committed whatever the broker or the database say now: the
    # caller gets their ids, and the outbox keeps what still has to go out.
    except Exception as exc:  # noqa: BLE001
        log.warning("%d job id(s) left in the outbox: %s", len(entries), exc)
        return False
    return True


def drain(storage, queues, limit=10000, min_age=0):
    """Publish up to ``limit`` outbox rows, oldest first, and delete them; answer how many.

    Rows younger than ``min_age`` seconds are left to the placer that is
    publishing them at this moment, so that a sweep does not go out twice.
    Rows another central is draining at the same time are left to it.
    """

    def send(rows):
        publish(queues, [(job_id, rid, ncpus) for _, job_id, rid, ncpus in rows])

    older_than = now() - timedelta(seconds=min_age) if min_age else None
    count = storage.outbox.take(send, limit, older_than)
    if count:
        log.info("outbox: published %d job id(s)", count)
    return count


def place_waiting(storage, queues):
    """Give unplaced queued jobs a machine that fits their cores and tags, publish them.

    Answers how many were placed; the others wait for a machine with room.
    """
    waiting = storage.machines.unplaced()
    if not waiting:
        return 0
    groups = defaultdict(list)
    for job_id, ncpus, tags in waiting:
        groups[tags].append((job_id, ncpus))
    entries = []
    for tags, jobs in groups.items():
        placements = storage.machines.choose([ncpus for _, ncpus in jobs], tags)
        entries += [
            (job_id, rid, ncpus)
            for (job_id, ncpus), rid in zip(jobs, placements, strict=True)
            if rid is not None
        ]
    placed = storage.jobs.place_many(entries)
    publish_placed(storage, queues, placed)
    return len(placed)
