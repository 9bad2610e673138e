"""The ``machine`` service: the registry of resource machines, their heartbeats and health."""

from datetime import timedelta

from nameko.dependency_providers import Config

from services.central.providers import Caller, Database, JobQueues
from services.central.reconciler import Reconciler, on_timer
from services.central.storage.retry import unreachable
from services.central.watch import Watching
from services.common.errors import MirrorError
from services.common.rpc import mirror_rpc, to_int


class MachineService(Reconciler):
    """Machine RPCs; it also hosts the reconciler (see ``machine_service``)."""

    name = "machine"

    db = Database()
    queues = JobQueues()
    config = Config()
    caller = Caller()
    watch = Watching()

    @mirror_rpc
    def list(self):
        """Every known machine with its load (SPEC section 7)."""
        return self.db.machines.list()

    @mirror_rpc
    def ruok(self, rid):
        """One machine's health: online, queue length, running, stalled and waiting jobs.

        ``waiting_jobs`` lists the jobs pinned to it that wait while it is
        offline, and ``waiting`` says why (null when none wait). The job id lists
        name only the caller's own jobs (an admin's: every job); counts are
        the machine's.
        """
        stalled_after = timedelta(
            seconds=float(self.config["MONITOR"]["interval"])
            * float(self.config["RECONCILER"]["stalled_intervals"])
        )
        return self.db.machines.ruok(to_int(rid, "rid"), stalled_after, owner=self.caller.scope)

    @mirror_rpc
    def forget(self, rid):
        """Remove decommissioned machine ``rid``; admins only.

        Refused while it still sends heartbeats or has jobs that have not ended.
        """
        rid = to_int(rid, "rid")
        if not self.caller.admin:
            raise MirrorError("only an admin may forget a resource machine")
        return self.db.removal.forget_machine(rid, self.db.machines.online)

    @mirror_rpc
    def heartbeat(
        self,
        rid,
        name,
        slots,
        tags=(),
        autorun=False,
        started=False,
        roots=(),
        cleaned=(),
        slurm=None,
    ):
        """Record that machine ``rid`` is alive, with what it offers.

        ``slurm``: a Slurm machine's latest probe (``services.agent.probe``).

        Answers ``{"cleanup": [job ids]}``: jobs deleted in central whose
        directories and published files the machine still has to remove. The
        machine names those it removed in ``cleaned`` at a later heartbeat.
        """
        rid = to_int(rid, "rid")
        try:
            if cleaned:
                self.db.machines.cleaned(rid, [to_int(j, "job_id") for j in cleaned])
            cleanup = self.db.machines.heartbeat(
                rid,
                name,
                to_int(slots, "slots"),
                tags,
                autorun,
                started,
                roots,
                slurm if isinstance(slurm, dict) else None,
            )
        except Exception as exc:
            if unreachable(exc):
                # A beat not recorded: the reconciler's watch has a gap.
                self.watch.restart(f"Machine<{rid}> heartbeat not recorded: database unreachable")
            raise
        return {"cleanup": cleanup}


def machine_service(config):
    """``MachineService`` with the reconciler on ``RECONCILER.interval``."""
    return on_timer(MachineService, config)
