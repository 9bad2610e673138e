"""The ``events`` service: the event log for resuming streams, job counts, and the event relay.

The relay is a timer of this service: every :data:`RELAY_INTERVAL` seconds it
publishes the job events recorded since its last look, and every
:data:`MACHINE_EVERY` looks the machines that changed, on the topic exchange
:data:`services.common.events.EVENTS_EXCHANGE`. It starts at the newest event
of the log, so a restart publishes nothing twice; a stream that resumes asks
:meth:`EventsService.since` for what it missed.

With several central processes on one database, one of them relays: the one
holding the ``relay`` lease (``storage/exclusive.py``). The others ask for it
once a second and note the newest event meanwhile, so the one that takes over
from a stopped or dead relay starts where that one was, give or take a second
(a stream may see an event twice then; events carry their id).
"""

import logging

from nameko.timer import timer

from services.central.providers import Caller, Database
from services.central.relay import Relay
from services.central.storage.eventlog import MAX_PAGE, EventLog
from services.common.errors import MirrorError
from services.common.events import (
    EVENTS_EXCHANGE,
    FilterError,
    parse_filters,
    routing_key,
)
from services.common.nameko_ext import publish_unconfirmed
from services.common.rpc import mirror_rpc, to_int

log = logging.getLogger(__name__)

RELAY_INTERVAL = 0.2
# Machines are compared every this many relay ticks (once a second).
MACHINE_EVERY = 5
# Job events read and published per tick at most (1,500 a second): a backlog
# drains at that pace in the background instead of taking most of this process.
RELAY_PAGE = 300


class EventDatabase(Database):
    """The central storage plus the event log, its relay state and a publisher."""

    def setup(self):
        super().setup()
        self.log = EventLog(self.storage.jobs.Session)
        self.relay = None
        self.lease = None
        self.standby_high = None
        self.ticks = 0
        self.amqp_uri = self.container.config["AMQP_URI"]

    def start(self):
        self.lease = self.storage.exclusive.lease("relay")
        self.keep_lease()

    def stop(self):
        if self.lease is not None:
            self.lease.release()
        super().stop()

    def keep_lease(self):
        """Take, check or ask again for the relay lease; answer the relay if this process has it."""
        if self.lease.renew():
            if self.relay is None:
                start = self.log.last_id() if self.standby_high is None else self.standby_high
                self.relay = Relay(start)
                log.info("event relay: this central relays, after event %d", self.relay.high)
        else:
            if self.relay is not None:
                log.warning("event relay: lease lost after event %d", self.relay.high)
                self.relay = None
            self.standby_high = self.log.last_id()
        return self.relay

    def tick(self):
        """The relay of this tick (None while another central relays); the lease is seen to once a second."""
        self.ticks += 1
        if self.ticks % MACHINE_EVERY == 0:
            return self.keep_lease()
        return self.relay

    def get_dependency(self, worker_ctx):
        return self


class EventsService:
    """Events after an id for resuming streams, job counts, and the relay (a timer)."""

    name = "events"

    db = EventDatabase()
    caller = Caller()

    @mirror_rpc
    def since(self, after=0, filters=None, limit=MAX_PAGE):
        """Job events with an id above ``after``, oldest first, the caller's own jobs only.

        ``filters``: ``{job, sweep, project, machine, state}``, each a value,
        a list or a comma list. At most ``limit`` (up to 1000) events.
        """
        if filters is not None and not isinstance(filters, dict):
            raise MirrorError("filters must be an object of job, sweep, project, machine, state")
        try:
            parsed = parse_filters(filters)
        except FilterError as exc:
            raise MirrorError(str(exc)) from None
        return self.db.log.after(
            to_int(after, "after"), parsed, owner=self.caller.scope, limit=to_int(limit, "limit")
        )

    @mirror_rpc
    def metrics(self):
        """``{"jobs_by_state": {state: n}, "last_event_id": n}`` over the caller's jobs."""
        return {
            "jobs_by_state": self.db.log.counts_by_state(owner=self.caller.scope),
            "last_event_id": self.db.log.last_id(),
        }

    @timer(interval=RELAY_INTERVAL)
    def relay(self):
        """Publish the job events and machine changes not yet published."""
        db = self.db
        relay = db.tick()
        if relay is None:
            return
        events = relay.take(db.log.after(relay.high, limit=RELAY_PAGE))
        gaps = relay.pending_gaps()
        if gaps:
            events += relay.take(db.log.by_ids(gaps))
        if db.ticks % MACHINE_EVERY == 0:
            events += relay.machine_changes(db.storage.machines.list())
        if events:
            # Unconfirmed and transient: a stream that misses one resumes from the log.
            publish_unconfirmed(
                db.amqp_uri,
                [(event, routing_key(event)) for event in events],
                EVENTS_EXCHANGE,
                serializer="json",
                delivery_mode=1,
            )
            log.debug("published %d event(s), up to event %d", len(events), relay.high)
