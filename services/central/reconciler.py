"""The reconciler: publishes the outbox, places waiting jobs, moves the jobs of lost machines.

It runs on the ``machine`` service, every ``RECONCILER.interval`` seconds
(``on_timer``), with that service's storage, job queues, config and watch
(``services/central/watch.py``: no machine is judged lost before this process
has been able to record heartbeats for ``RECONCILER.lost_after`` seconds).
"""

import logging
from datetime import timedelta

from nameko.timer import timer

from services.central import publisher
from services.central.storage.records import now
from services.central.storage.retry import unreachable
from services.common.errors import MirrorError
from services.common.jobstates import ACTIVE, FAILED, QUEUED

log = logging.getLogger(__name__)


class Reconciler:
    """Mixin of the reconciler pass; the host provides ``db``, ``queues``, ``config`` and ``watch``."""

    def reconcile(self):
        """Move the jobs of lost machines, place waiting jobs, republish, drain the outbox.

        One central process at a time does this (``storage/exclusive.py``):
        while another holds the pass, this one skips it. Answers whether it ran.
        """
        try:
            with self.db.exclusive.hold("reconciler") as held:
                if held:
                    self._steps()
                else:
                    log.debug("reconciler: another central process runs this pass")
                return held
        except Exception as exc:  # noqa: BLE001 - the database away: the next pass tries again
            if unreachable(exc):
                self.watch.restart(f"database unreachable ({type(exc).__name__})")
            log.warning("reconciler: pass skipped: %s", exc)
            return False

    def _steps(self):
        reached = True
        for step in (self._recover_lost, self._place_waiting, self._republish, self._drain):
            try:
                # A step answers False when heartbeats could not reach central.
                if step() is False:
                    reached = False
            # One failing step (the broker or the database away) leaves the others
            # to run: the next pass tries it again.
            except Exception as exc:  # noqa: BLE001
                if unreachable(exc):
                    # Heartbeats could not be recorded either: the silence of
                    # machines counts again from now.
                    reached = False
                    self.watch.restart(f"database unreachable ({type(exc).__name__})")
                level = logging.WARNING if isinstance(exc, MirrorError) else logging.ERROR
                log.log(level, "reconciler: %s: %s", step.__name__, exc)
        if reached:
            self.watch.reached()

    def _drain(self):
        """Publish what the outbox holds: placements whose placer did not publish them."""
        min_age = float(self.config["RECONCILER"].get("outbox_after", 10))
        while publisher.drain(self.db, self.queues, min_age=min_age) >= 10000:
            pass

    def _place_waiting(self):
        """Give unplaced queued jobs a machine that fits their cores and tags, and publish them."""
        placed = publisher.place_waiting(self.db, self.queues)
        if placed:
            log.info("reconciler: placed %d waiting job(s)", placed)

    def _republish(self):
        """Queue again the ids of jobs still QUEUED long after their last publication.

        Only on online autorun machines: a manual machine reads no queue, and an
        offline one finds its durable queue when it is back.
        """
        after = float(self.config["RECONCILER"].get("republish_after", 60))
        count = self.db.outbox.republish(
            self.db.machines.autorun_online(), now() - timedelta(seconds=after)
        )
        if count:
            log.info("reconciler: %d queued job id(s) published again", count)

    def _recover_lost(self):
        """Move or fail the queued and claimed jobs of machines silent for ``lost_after``.

        Jobs pinned to a machine stay on it and wait for it. No machine is lost
        before this process has watched for ``lost_after`` seconds: after its
        start or a database outage, a machine's silence may be heartbeats it
        could not record.
        """
        config = self.config["RECONCILER"]
        lost_after = float(config["lost_after"])
        lost = self.db.machines.silent_for(timedelta(seconds=lost_after))
        if lost and not self.watch.covers(lost_after):
            log.info(
                "reconciler: %s silent for %gs, but heartbeats watched for only %.1fs:"
                " not judged lost yet",
                ", ".join(f"Machine<{rid}>" for rid in lost),
                lost_after,
                self.watch.watched(),
            )
            return
        if lost and not self.watch.hears():
            return False
        fail = config["on_machine_lost"] == "fail"
        for rid in lost:
            reason = f"resource machine {rid} stopped sending heartbeats"
            if fail:
                self._fail_queued(rid, reason)
            else:
                moved = self.db.jobs.unplace_queued(rid, f"{reason}; placed again")
                if moved:
                    log.warning("Machine<%s> lost: %d queued job(s) move", rid, len(moved))
        for job_id in self.db.jobs.orphaned(lost):
            job = self.db.jobs.get(job_id)
            reason = f"resource machine {job['rid']} stopped sending heartbeats"
            if fail:
                self._fail(job_id, reason, ACTIVE)
            elif self.db.jobs.requeue(job_id, f"{reason}; queued again"):
                log.warning("Job<%s> queued again: %s", job_id, reason)

    def _fail_queued(self, rid, reason):
        """Fail the unpinned QUEUED jobs of lost machine ``rid``."""
        for job_id in self.db.jobs.unplace_queued(rid, reason):
            self._fail(job_id, reason, [QUEUED])

    def _fail(self, job_id, reason, expect):
        try:
            self.db.jobs.report(
                job_id, None, {"state": FAILED, "error": reason, "message": reason}, list(expect)
            )
            log.warning("Job<%s> failed: %s", job_id, reason)
        except MirrorError as exc:
            log.warning("Job<%s> not failed: %s", job_id, exc)


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
