"""A Slurm machine's view of its cluster (sinfo, squeue), kept fresh for its heartbeats.

The probe runs in a green thread of its own, never in the heartbeat: a slow
slurmctld delays the figures, not the beat. Central keeps the latest with the
machine (``machine.list``'s ``slurm``) and the NEWT overview serves it from
there, so no call waits on the cluster.
"""

import logging
import time

from services.agent import slurm
from services.common.errors import MirrorError

log = logging.getLogger(__name__)

#: Seconds between two probes of the cluster.
PROBE_EVERY = 5.0


def take(partition=""):
    """``{"partitions": {name: {idle, alloc, other, total}}, "queue": {PD, R}, "taken": epoch}``.

    With ``partition`` only that one's cores and jobs.
    """
    parts = slurm.parse_sinfo(slurm.run(["sinfo", "-h", "-o", "%R|%C"]))
    if partition:
        parts = {k: v for k, v in parts.items() if k == partition}
    queue = slurm.parse_queue_counts(slurm.run(["squeue", "-h", "-o", "%t|%P"]), partition)
    return {"partitions": parts, "queue": queue, "taken": time.time()}


def refresh(rt):
    """Probe the cluster now (once at a time) and keep the answer in ``rt.probe``."""
    if rt.probing:
        return
    rt.probing = True
    try:
        rt.probe = take(rt.slurm.partition)
    except MirrorError as exc:
        log.warning("Machine<%s> Slurm probe failed: %s", rt.rid, exc)
    finally:
        rt.probing = False
        rt.probed_at = time.monotonic()


def due(rt):
    """Whether a Slurm machine's probe should be taken again."""
    return (
        rt.slurm is not None
        and not rt.probing
        and (rt.probed_at is None or time.monotonic() - rt.probed_at >= PROBE_EVERY)
    )
