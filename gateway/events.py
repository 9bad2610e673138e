"""``GET /events``: Server-Sent Events from the broker's event exchange, filtered per caller.

One :class:`EventHub` per gateway process consumes the topic exchange
:data:`services.common.events.EVENTS_EXCHANGE` on a queue of its own (exclusive,
deleted with the process) and hands every event to the connected streams and to
the listeners (the metrics). A stream that resumes (``Last-Event-ID`` or
``?after=``) subscribes first, then reads what it missed from central's
``events.since``, then goes on live: an event both read and received is sent
once, by its id.
"""

import collections
import json
import logging
import uuid

import eventlet
from eventlet.queue import Empty, Queue
from kombu import Connection
from kombu import Queue as AmqpQueue
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from services.common.events import (
    EVENTS_EXCHANGE,
    JOB,
    FilterError,
    matches,
    parse_filters,
    visible_to,
)

from . import mesh
from .errors import BadRequest

log = logging.getLogger(__name__)

# Seconds between ``: ping`` comments that keep proxies from closing a quiet stream.
PING_EVERY = 15.0
# Events a slow stream may fall behind by before it is closed (it resumes by id).
STREAM_BACKLOG = 10000
# Ids a stream remembers to send each event once.
SEEN_IDS = 20000
# Events read from the log per call while a stream catches up.
REPLAY_PAGE = 1000
# Seconds before the hub connects again after losing the broker.
RECONNECT_DELAY = 1.0
CLOSED = object()


class Subscription:
    """One stream's queue of events, filtered by what its caller may see and asked for."""

    def __init__(self, identity, filters):
        self.identity = identity
        self.filters = filters
        self.queue = Queue()

    def offer(self, event):
        if not visible_to(event, self.identity) or not matches(event, self.filters):
            return
        if self.queue.qsize() >= STREAM_BACKLOG:
            self.queue.put(CLOSED)
            return
        self.queue.put(event)


class EventHub(DependencyProvider):
    """Consumes the event exchange in a green thread; fans each event out."""

    def setup(self):
        self.uri = self.container.config["AMQP_URI"]
        self.subscriptions = set()
        self.listeners = []
        self.running = False
        self.queue_name = f"gateway-events-{uuid.uuid4().hex[:12]}"

    def start(self):
        self.running = True
        self.container.spawn_managed_thread(self._consume)

    def stop(self):
        self.running = False
        for sub in list(self.subscriptions):
            sub.queue.put(CLOSED)

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self

    # -- fan-out ------------------------------------------------------------------
    def subscribe(self, identity, filters):
        sub = Subscription(identity, filters)
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub):
        self.subscriptions.discard(sub)

    def dispatch(self, event):
        """Hand ``event`` to every listener and every stream that may see it."""
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener never stops the stream
                log.exception("event listener failed on %r", event)
        for sub in list(self.subscriptions):
            sub.offer(event)

    # -- consumer -------------------------------------------------------------------
    def _consume(self):
        while self.running:
            try:
                with Connection(self.uri, heartbeat=30) as conn:
                    queue = AmqpQueue(
                        self.queue_name,
                        exchange=EVENTS_EXCHANGE,
                        routing_key="#",
                        exclusive=True,
                        auto_delete=True,
                    )
                    with conn.Consumer(queue, callbacks=[self._on_message], no_ack=True):
                        log.info("consuming events on %s", self.queue_name)
                        while self.running:
                            try:
                                conn.drain_events(timeout=1)
                            except TimeoutError:
                                conn.heartbeat_check()
            except Exception as exc:  # noqa: BLE001 - reconnect whatever went wrong
                if self.running:
                    log.warning("event consumer lost the broker (%s); reconnecting", exc)
                    # Events published meanwhile never reach this queue: the
                    # streams end, and their clients resume from the log by id.
                    for sub in list(self.subscriptions):
                        sub.queue.put(CLOSED)
                    eventlet.sleep(RECONNECT_DELAY)

    def _on_message(self, body, message):
        if isinstance(body, dict) and body.get("kind"):
            self.dispatch(body)


def request_filters(args):
    """The parsed filters of a request's query parameters (repeated ones joined)."""
    given = {key: ",".join(args.getlist(key)) for key in args if key not in ("after", "token")}
    try:
        return parse_filters(given)
    except FilterError as exc:
        raise BadRequest(str(exc)) from None


def resume_point(request):
    """The id after which a stream resumes (``Last-Event-ID`` or ``?after=``), or None."""
    given = request.headers.get("Last-Event-ID") or request.args.get("after")
    if given is None or str(given).strip() == "":
        return None
    text = str(given).strip()
    if not text.isdigit():
        raise BadRequest(f"Last-Event-ID must be an event id, got {text!r}")
    return int(text)


def replay(services, after, filters, timeout):
    """Every job event above ``after`` that central's log holds for the caller, oldest first."""
    wanted = {key: sorted(values) for key, values in filters.items()}
    out = []
    while True:
        page = mesh.ask(
            services,
            "events",
            "since",
            {"after": after, "filters": wanted, "limit": REPLAY_PAGE},
            timeout,
        )
        out.extend(page)
        if len(page) < REPLAY_PAGE:
            return out
        after = page[-1]["id"]


def unbuffered(request):
    """Have eventlet's server send each piece of the response as it comes.

    Its default holds a response's first bytes back until 4 KiB have gathered.
    """
    request.environ["eventlet.minimum_write_chunk_size"] = 0


def sse(event):
    """One Server-Sent Events message (job events carry their id)."""
    lines = []
    if event.get("kind") == JOB:
        lines.append(f"id: {event['id']}")
    lines.append(f"event: {event.get('kind')}")
    lines.append("data: " + json.dumps(event, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def stream(hub, sub, backlog, ping_every=PING_EVERY):
    """The body of a stream: ``backlog`` first, then live events, each job event once."""
    seen = collections.deque(maxlen=SEEN_IDS)
    seen_set = set()

    def fresh(event):
        if event.get("kind") != JOB:
            return True
        event_id = event["id"]
        if event_id in seen_set:
            return False
        if len(seen) == seen.maxlen:
            seen_set.discard(seen[0])
        seen.append(event_id)
        seen_set.add(event_id)
        return True

    try:
        yield b"retry: 2000\n\n"
        for event in backlog:
            if fresh(event):
                yield sse(event)
        while True:
            try:
                event = sub.queue.get(timeout=ping_every)
            except Empty:
                yield b": ping\n\n"
                continue
            if event is CLOSED:
                return
            if fresh(event):
                yield sse(event)
    finally:
        hub.unsubscribe(sub)


def handle_events(request, identity, hub, services, timeout):
    """The streaming response of ``GET /events`` for an authenticated caller."""
    filters = request_filters(request.args)
    after = resume_point(request)
    # Subscribe before reading the log: whatever happens meanwhile is queued.
    sub = hub.subscribe(identity, filters)
    try:
        backlog = replay(services, after, filters, timeout) if after is not None else []
    except Exception:
        hub.unsubscribe(sub)
        raise
    unbuffered(request)
    response = Response(stream(hub, sub, backlog), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
