"""The reconciler's watch: how long this process has been able to record heartbeats.

A machine's silence means something only over time someone listened. A central
process that was stopped, or whose database was away, missed the heartbeats of
that time: the machines were not silent, central was deaf. So the reconciler
judges a machine lost only when it has watched, without a gap, for at least
``RECONCILER.lost_after`` seconds (see ``Reconciler._recover_lost``).
"""

import logging
import time

from nameko.extensions import DependencyProvider

log = logging.getLogger(__name__)


class Watch:
    """Since when heartbeats could be recorded without a gap: the start, or the last database failure.

    ``watched`` backdates the start (tests that want the grace already over).
    """

    def __init__(self, clock=time.monotonic, watched=0.0):
        self.clock = clock
        self.since = clock() - watched
        # Whether the database failed since the last pass that reached it: one
        # warning per outage, however many calls fail during it.
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

    def reached(self):
        """Record that a pass reached the database again."""
        if self.interrupted:
            log.info("reconciler: database reached again")
        self.interrupted = False


class Watching(DependencyProvider):
    """One ``Watch`` per container, started when the container starts; every worker shares it."""

    def start(self):
        self.watch = Watch()

    def get_dependency(self, worker_ctx):
        return self.watch
