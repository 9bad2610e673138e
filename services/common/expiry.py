"""Requests that expire: a caller's deadline travels with its request, and a late one is dropped.

A caller that gives up on a call after ``timeout`` seconds publishes it with
an AMQP ``expiration`` of ``timeout`` (the broker drops it unconsumed) and
``mirror_deadline`` in its context data (the consumer drops one that reached
it too late, e.g. held by a stopped process). Deadlines are epoch seconds:
machines compare them on their own clocks, which NTP keeps within a second.
"""

import time

from services.common.errors import MirrorError

#: Context data key: the epoch second after which nobody waits for the answer.
DEADLINE_KEY = "mirror_deadline"


def expired(deadline, now=None):
    """Whether the ``deadline`` (epoch seconds, or None for none) has passed."""
    if deadline is None:
        return False
    try:
        deadline = float(deadline)
    except (TypeError, ValueError):
        return False
    return (time.time() if now is None else now) > deadline


def expired_error(rid):
    """The error a resource machine answers a request that expired before it took it."""
    return MirrorError(f"request expired before resource machine {rid} took it")
