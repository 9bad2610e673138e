"""Retry a storage call once the database dropped its connection (a PostgreSQL restart)."""

import functools
import inspect
import logging

import eventlet
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)


def disconnected(exc):
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def on_disconnect(fn, tries=4, delay=0.5):
    """Run ``fn`` again, on a fresh connection, when its connection was lost.

    The pool drops a connection that raised a disconnect error, so the next
    try checks out a new one; a transaction that died with its connection
    was rolled back by the server, so running it again is safe.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for attempt in range(1, tries + 1):
            try:
                return fn(*args, **kwargs)
            except DBAPIError as exc:
                if not disconnected(exc) or attempt == tries:
                    raise
                log.warning("database connection lost in %s; try %d", fn.__qualname__, attempt + 1)
                eventlet.sleep(delay * attempt)
        raise AssertionError("unreachable")

    return wrapper


def retry_disconnects(cls):
    """Class decorator: every public method retries on a lost database connection.

    Methods that take a ``session`` run inside their caller's transaction and
    cannot be retried alone: the caller's own retry covers them.
    """
    for name, member in list(vars(cls).items()):
        if not callable(member) or name.startswith("_"):
            continue
        if "session" in inspect.signature(member).parameters:
            continue
        setattr(cls, name, on_disconnect(member))
    return cls


def unreachable(exc):
    """Whether ``exc`` says the database could not be reached (down, restarting, pool exhausted).

    A refused statement (an integrity or programming error) is not one: the
    database answered it.
    """
    return isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)) or disconnected(exc)
