"""Creation calls answered once: a repeated request gets the first answer, nothing is made twice.

A request is named by the caller's ``request_id``, or, without one, by its
AMQP correlation id: nameko acknowledges a request only after its handler
returns, so a central killed after committing gets the same message (same
correlation id) again. The name and the answer are stored in the transaction
that creates the records (``storage/requests.py``), so either both exist or
neither does.
"""

import functools
import inspect
import logging

from nameko.extensions import DependencyProvider
from sqlalchemy.exc import IntegrityError

from services.central.storage.requests import CORRELATION_PREFIX, record_request
from services.common.errors import MirrorError
from services.common.identity import identity_of
from services.common.nameko_ext import CORRELATION_KEY, keep_signature

log = logging.getLogger(__name__)

# The ``requests.request_id`` column's width.
MAX_REQUEST_ID = 200


class Ticket:
    """One worker's request: who calls, under which name, and how to store its answer."""

    def __init__(self, caller, correlation_id):
        self.caller = caller
        self.correlation_id = correlation_id
        self.key = self.method = None

    def open(self, method, request_id):
        """Name this request ``method`` under ``request_id`` (or its correlation id)."""
        self.method = method
        if request_id is not None:
            request_id = str(request_id)
            if not request_id or len(request_id) > MAX_REQUEST_ID:
                raise MirrorError(
                    f"request_id must be 1 to {MAX_REQUEST_ID} characters, got {len(request_id)}"
                )
            self.key = request_id
        elif self.correlation_id:
            self.key = CORRELATION_PREFIX + self.correlation_id

    def record(self, db, result):
        """Store ``result`` as this request's answer, in the transaction of ``db``."""
        if self.key is not None:
            record_request(db, self.caller, self.key, self.method, result)


class Requests(DependencyProvider):
    """Each worker gets the :class:`Ticket` of its request."""

    def get_dependency(self, worker_ctx):
        return Ticket(identity_of(worker_ctx.data).name, worker_ctx.data.get(CORRELATION_KEY))


def first_answer(log_store, ticket):
    """The stored answer of ``ticket``'s request, ``(True, answer)``; ``(False, None)`` if none."""
    if ticket.key is None:
        return False, None
    found = log_store.find(ticket.caller, ticket.key)
    if found is None:
        return False, None
    method, result = found
    if method != ticket.method:
        raise MirrorError(f"request_id {ticket.key!r} was already used for {method}")
    return True, result


def idempotent(fn):
    """Answer a repeat of the creation call ``fn`` (a service method) with its first answer.

    ``fn`` takes ``request_id=None`` and passes ``self.requests.record`` as
    the ``within`` hook of the storage call that creates its records. The
    service has ``requests = Requests()`` and ``db`` (the central Storage).
    """
    method_name = fn.__name__

    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        request_id = inspect.signature(fn).bind(self, *args, **kwargs).arguments.get("request_id")
        ticket = self.requests
        ticket.open(f"{self.name}.{method_name}", request_id)
        done, answer = first_answer(self.db.requests, ticket)
        if done:
            log.info("%s: request %s answered again", ticket.method, ticket.key)
            return answer
        try:
            return fn(self, *args, **kwargs)
        except IntegrityError:
            # A twin of this request committed first: its answer stands.
            done, answer = first_answer(self.db.requests, ticket)
            if not done:
                raise
            return answer

    return keep_signature(method, fn)
