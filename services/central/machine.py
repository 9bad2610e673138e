"""The ``machine`` service: the registry of resource machines, their heartbeats and health."""

from datetime import timedelta

from nameko.dependency_providers import Config

from services.central.providers import Database, JobQueues
from services.central.reconciler import Reconciler, on_timer
from services.common.rpc import mirror_rpc, to_int


class MachineService(Reconciler):
    """Machine RPCs; it also hosts the reconciler (see ``machine_service``)."""

    name = "machine"

    db = Database()
    queues = JobQueues()
    config = Config()

    @mirror_rpc
    def list(self):
        """Every known machine with its load (SPEC section 7)."""
        return self.db.machines.list()

    @mirror_rpc
    def ruok(self, rid):
        """One machine's health: online, queue length, running and stalled jobs."""
        stalled_after = timedelta(
            seconds=float(self.config["MONITOR"]["interval"])
            * float(self.config["RECONCILER"]["stalled_intervals"])
        )
        return self.db.machines.ruok(to_int(rid, "rid"), stalled_after)

    @mirror_rpc
    def heartbeat(self, rid, name, slots, tags=(), autorun=False, started=False, roots=()):
        """Record that machine ``rid`` is alive, with what it offers."""
        self.db.machines.heartbeat(
            to_int(rid, "rid"), name, to_int(slots, "slots"), tags, autorun, started, roots
        )
        return []


def machine_service(config):
    """``MachineService`` with the reconciler on ``RECONCILER.interval``."""
    return on_timer(MachineService, config)
