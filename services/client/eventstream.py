"""The event stream of a mesh read straight from the broker: a queue of one's own on ``mirror.events``.

A client inside the mesh (it holds the broker's address) sees every event, as
the mesh's own admin does. :class:`EventStream` is an iterator of event dicts;
:meth:`EventStream.next` waits a bounded time, for callers that poll when the
stream stays quiet.
"""

import logging
import time
import uuid

from kombu import Connection, Queue

from services.common.events import (
    EVENTS_EXCHANGE,
    EVENTS_EXCHANGE_NAME,
    FilterError,
    matches,
    parse_filters,
)

log = logging.getLogger("services.client")


class StreamUnavailable(Exception):
    """No event exchange on the broker (no central publishes events), or no broker."""


def binding_keys(filters):
    """The routing keys to bind: one per state asked for, else every event."""
    if "state" in filters and "machine" not in filters:
        return [f"job.{state}" for state in sorted(filters["state"])]
    return ["#"]


class EventStream:
    """Events matching ``filters`` from the moment it is opened; close it when done."""

    def __init__(self, amqp_uri, filters=None, connect_timeout=5):
        try:
            self.filters = parse_filters(filters)
        except FilterError as exc:
            raise ValueError(str(exc)) from None
        self.pending = []
        self.conn = Connection(amqp_uri, connect_timeout=connect_timeout)
        try:
            self.conn.ensure_connection(max_retries=1, timeout=connect_timeout)
            channel = self.conn.channel()
            # Passive: a mesh without the relay has no exchange, and the caller polls.
            channel.exchange_declare(EVENTS_EXCHANGE_NAME, "topic", passive=True)
            name = f"client-events-{uuid.uuid4().hex[:12]}"
            queues = [
                Queue(
                    name,
                    exchange=EVENTS_EXCHANGE,
                    routing_key=key,
                    exclusive=True,
                    auto_delete=True,
                )
                for key in binding_keys(self.filters)
            ]
            self.consumer = self.conn.Consumer(
                queues, callbacks=[self._on_message], no_ack=True, accept=["json"]
            )
            self.consumer.consume()
        except Exception as exc:  # noqa: BLE001 - any failure means no stream
            self.conn.release()
            raise StreamUnavailable(f"no event stream: {exc}") from exc

    def _on_message(self, body, message):
        if isinstance(body, dict) and matches(body, self.filters):
            self.pending.append(body)

    def next(self, timeout=None):
        """The next event, or None when none came within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.pending:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            try:
                self.conn.drain_events(timeout=left)
            except TimeoutError:
                return None
        return self.pending.pop(0)

    def settle(self, seconds):
        """Wait until events come (then take every one already here) or ``seconds`` pass.

        Answers the last event taken, or None.
        """
        event = self.next(timeout=seconds)
        # Events of one transaction come together: take them all before looking again.
        while event is not None and self.pending:
            event = self.next(timeout=0)
        return event

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def close(self):
        try:
            self.conn.release()
        except Exception:  # noqa: BLE001 - closing a broken connection
            log.debug("closing the event stream failed", exc_info=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
