"""The reconciler's watch: how long this process has been able to record heartbeats.

A machine's silence means something only over time someone listened. A central
process that was stopped, or whose database was away, missed the heartbeats of
that time: the machines were not silent, central was deaf. So the reconciler
judges a machine lost only when it has watched, without a gap, for at least
``RECONCILER.lost_after`` seconds (see ``Reconciler._recover_lost``).

The same holds for the broker: while central's own way to it is cut, or no
central process consumes the ``machine`` queue, heartbeats are sent and not
recorded. ``heartbeat_consumers`` asks the broker before any machine is judged.
"""

import logging
import time
from functools import partial

from amqp.exceptions import NotFound
from kombu import Connection
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.extensions import DependencyProvider

#: The queue heartbeats travel on: nameko's RPC queue of the ``machine`` service.
HEARTBEAT_QUEUE = "rpc-machine"

log = logging.getLogger(__name__)


class Watch:
    """Since when heartbeats could be recorded without a gap: the start, or the last failure.

    ``watched`` backdates the start (tests that want the grace already over).
    ``consumers`` answers how many consumers take heartbeats now (see
    ``heartbeat_consumers``); without it there is no broker to ask.
    """

    def __init__(self, clock=time.monotonic, watched=0.0, consumers=None):
        self.clock = clock
        self.since = clock() - watched
        self.consumers = consumers
        # Whether the database or the broker failed since the last pass that
        # reached both: one warning per outage, however many calls fail during it.
        self.interrupted = False

    def watched(self):
        """Seconds this process has been able to record heartbeats, without a gap."""
        return self.clock() - self.since

    def covers(self, seconds):
        """Whether the watch has lasted ``seconds``: a silence that long was observed."""
        return self.watched() >= seconds

    def restart(self, reason):
        """Start watching again from now: heartbeats may have been lost until now."""
        self.since = self.clock()
        if not self.interrupted:
            log.warning("reconciler: %s; machines' silence counts again from now", reason)
        self.interrupted = True

    def hears(self):
        """Whether heartbeats reach central now; if not, the watch starts again.

        The database may be fine while the broker is away from this process,
        or while no central process consumes heartbeats: a machine's silence
        is then central's deafness.
        """
        if self.consumers is None:
            return True
        try:
            consumers = self.consumers()
        except Exception as exc:  # noqa: BLE001 - any failure to ask is the broker away
            self.restart(f"broker unreachable ({type(exc).__name__}: {exc})")
            return False
        if not consumers:
            self.restart("no central process consumes heartbeats")
            return False
        return True

    def reached(self):
        """Record that a pass reached the database, and heartbeats reach central, again."""
        if self.interrupted:
            log.info("reconciler: heartbeats can be recorded again")
        self.interrupted = False


class Watching(DependencyProvider):
    """One ``Watch`` per container, started when the container starts; every worker shares it."""

    def start(self):
        self.watch = Watch(consumers=partial(heartbeat_consumers, self.container.config))

    def get_dependency(self, worker_ctx):
        return self.watch


def heartbeat_consumers(config, timeout=3.0):
    """How many consumers take heartbeats now, asked of the broker through this process's own URI.

    Raises when the broker cannot be reached from here; 0 when the queue is
    missing. A fresh connection each time: it is asked only before judging a
    machine, and a kept one would outlive a broker restart unnoticed.
    """
    with Connection(
        config[AMQP_URI_CONFIG_KEY],
        ssl=config.get(AMQP_SSL_CONFIG_KEY),
        login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        connect_timeout=timeout,
    ) as conn:
        channel = conn.channel()
        try:
            return channel.queue_declare(queue=HEARTBEAT_QUEUE, passive=True).consumer_count
        except NotFound:
            return 0
