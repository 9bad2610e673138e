"""The reconciler: places jobs that wait for a machine, and takes jobs back from lost ones.

It runs on the ``machine`` service, every ``RECONCILER.interval`` seconds
(``on_timer``), with that service's storage, job queues and config.
"""

import logging
from collections import defaultdict
from datetime import timedelta

from nameko.timer import timer

from services.common.errors import MirrorError
from services.common.jobstates import ACTIVE, FAILED

log = logging.getLogger(__name__)


class Reconciler:
    """Mixin of the reconciler pass; the host service provides ``db``, ``queues`` and ``config``."""

    def reconcile(self):
        """Place unplaced jobs, and take jobs back from machines whose heartbeat stopped."""
        try:
            self._place_waiting()
            self._recover_lost()
        except MirrorError as exc:
            log.warning("reconciler: %s", exc)

    def _place_waiting(self):
        """Give unplaced queued jobs an online machine and queue them there."""
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
        """Requeue or fail the claimed jobs of machines silent for ``lost_after``."""
        config = self.config["RECONCILER"]
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


def on_timer(service_cls, config):
    """``service_cls`` with its ``reconcile`` run every ``RECONCILER.interval`` seconds.

    A subclass of the same name: nameko's timer takes its interval when the
    entrypoint is declared, and the interval comes from the config.
    """

    def reconcile(self):
        return service_cls.reconcile(self)

    interval = float(config["RECONCILER"]["interval"])
    return type(
        service_cls.__name__, (service_cls,), {"reconcile": timer(interval=interval)(reconcile)}
    )
