"""The fault injector of the soak run: each call breaks one part of the mesh, then mends it.

Kinds: ``agent`` (SIGKILL an agent, start it again after a pause), ``central``
(SIGKILL one of the central processes, start it again), ``broker`` (stop and
start the RabbitMQ application), ``postgres`` (stop and start the PostgreSQL
server), ``cut`` (cut an agent's broker connection at its TCP proxy, restore it
after a pause). Broker and PostgreSQL restarts hit every user of this machine's
servers: they take the same locks as tests/integration/test_faults.py.
"""

import logging
import random
import signal
import time
from collections import Counter

from tests.chaos.servers import broker_stopped, postgres_stopped

KINDS = ("agent", "central", "broker", "postgres", "cut")
log = logging.getLogger("chaos")


class Injector:
    """Breaks the mesh ``mesh`` one fault at a time, from ``kinds``, and counts what it did."""

    def __init__(self, mesh, kinds, agents, centrals, cutters, seed=None):
        self.mesh = mesh
        self.kinds = list(kinds)
        self.agents = list(agents)
        self.centrals = list(centrals)
        self.cutters = cutters
        self.random = random.Random(seed)
        self.done = Counter()
        self.restarted = Counter()

    def pause(self, low, high):
        time.sleep(self.random.uniform(low, high))

    def inject(self):
        kind = self.random.choice(self.kinds)
        log.info("fault: %s", kind)
        getattr(self, f"fault_{kind}")()
        self.done[kind] += 1
        self.revive()

    def fault_agent(self):
        rid = self.random.choice(self.agents)
        self.mesh.stop(f"agent{rid}", signal.SIGKILL)
        self.pause(1, 8)
        self.start_agent(rid)

    def fault_central(self):
        name = self.random.choice(self.centrals)
        self.mesh.stop(name, signal.SIGKILL)
        self.pause(0.5, 3)
        self.mesh.start(name, "central")

    def fault_broker(self):
        with broker_stopped():
            self.pause(2, 6)

    def fault_postgres(self):
        with postgres_stopped():
            self.pause(3, 15)

    def fault_cut(self):
        cutter = self.cutters[self.random.choice(self.agents)]
        cutter.cut()
        try:
            self.pause(2, 8)
        finally:
            cutter.restore()

    def start_agent(self, rid):
        options = dict(self.mesh.agent_options[rid], wait=False)
        self.mesh.start_agent(rid, **options)

    def revive(self):
        """Start again every mesh process that exited by itself (a fault took it down)."""
        for name, proc in list(self.mesh.procs.items()):
            if proc.poll() is None:
                continue
            log.warning("%s exited with %s; started again", name, proc.returncode)
            self.restarted[name] += 1
            self.mesh.procs.pop(name)
            if name.startswith("agent"):
                self.start_agent(int(name[len("agent") :]))
            elif name.startswith("central"):
                self.mesh.start(name, "central")
            else:
                self.mesh.start(name, name)
