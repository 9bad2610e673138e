"""The ``machine`` service (registry, heartbeats, health) and the reconciler timer."""

import logging
from collections import defaultdict
from datetime import timedelta

from nameko.timer import timer

from services.common.errors import MirrorError
from services.common.jobstates import ACTIVE, FAILED
from services.common.rpc import mirror_rpc, to_int
from services.dependencies import Database, JobQueues

log = logging.getLogger(__name__)


class MachineService:
    name = "machine"

    db = Database()
    queues = JobQueues()

    @mirror_rpc
    def list(self):
        return self.db.machines.list()

    @mirror_rpc
    def ruok(self, rid):
        config = self.db.container.config
        stalled_after = timedelta(
            seconds=float(config["MONITOR"]["interval"])
            * float(config["RECONCILER"]["stalled_intervals"])
        )
        return self.db.machines.ruok(to_int(rid, "rid"), stalled_after)

    @mirror_rpc
    def heartbeat(self, rid, name, slots, tags=(), autorun=False, started=False, roots=()):
        self.db.machines.heartbeat(
            to_int(rid, "rid"), name, to_int(slots, "slots"), tags, autorun, started, roots
        )
        return []

    def reconcile(self):
        """Place unplaced jobs, and take jobs back from machines whose heartbeat stopped."""
        try:
            self._place_waiting()
            self._recover_lost()
        except MirrorError as exc:
            log.warning("reconciler: %s", exc)

    def _place_waiting(self):
        waiting = self.db.machines.unplaced()
        if not waiting:
            return
        placements = self.db.machines.choose(len(waiting), 1)
        by_machine = defaultdict(list)
        for job_id, rid in zip(waiting, placements, strict=True):
            if rid is not None and self.db.jobs.place(job_id, rid):
                by_machine[rid].append((job_id, self.db.jobs.get(job_id)["ncpus"]))
        for rid, job_ids in by_machine.items():
            log.info("reconciler: placed %d waiting job(s) on Machine<%s>", len(job_ids), rid)
            self.queues.publish(rid, job_ids)

    def _recover_lost(self):
        config = self.db.container.config["RECONCILER"]
        lost = self.db.machines.silent_for(timedelta(seconds=float(config["lost_after"])))
        if not lost:
            return
        for job_id in self.db.jobs.orphaned(lost):
            job = self.db.jobs.get(job_id)
            reason = f"resource machine {job['rid']} stopped sending heartbeats"
            if config["on_machine_lost"] == "fail":
                self.db.jobs.report(
                    job_id,
                    None,
                    {"state": FAILED, "error": reason, "message": reason},
                    expect=list(ACTIVE),
                )
                log.warning("Job<%s> failed: %s", job_id, reason)
            elif self.db.jobs.requeue(job_id, f"{reason}; queued again"):
                log.warning("Job<%s> queued again: %s", job_id, reason)


def machine_service(config):
    """``MachineService`` with the reconciler on ``RECONCILER.interval``."""

    def reconcile(self):
        return MachineService.reconcile(self)

    interval = float(config["RECONCILER"]["interval"])
    return type(
        "MachineService", (MachineService,), {"reconcile": timer(interval=interval)(reconcile)}
    )
