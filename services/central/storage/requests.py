"""The first answers of creation calls, so that a repeated request answers them again."""

from datetime import timedelta

from sqlalchemy import delete, insert, select

from db.models import Request
from services.central.storage.records import now
from services.central.storage.retry import retry_disconnects

REQUESTS = Request.__table__

#: The prefix of a key made of a request's correlation id (a call without ``request_id``).
CORRELATION_PREFIX = "amqp:"

# A broker redelivers an unacknowledged request within minutes of the
# consumer's loss; keys made of correlation ids are kept a day, then dropped.
# A caller's own ``request_id`` is kept: the caller chose to rely on it.
CORRELATION_KEPT = timedelta(days=1)


@retry_disconnects
class RequestLog:
    """Reads and writes of the ``requests`` table."""

    def __init__(self, sessionmaker):
        self.Session = sessionmaker

    def find(self, caller, request_id):
        """``(method, result)`` first answered to ``caller`` for ``request_id``, or None."""
        query = select(REQUESTS.c.method, REQUESTS.c.result).where(
            REQUESTS.c.caller == caller, REQUESTS.c.request_id == request_id
        )
        with self.Session() as session:
            row = session.execute(query).first()
        return tuple(row) if row is not None else None


def record_request(db, caller, request_id, method, result):
    """Store ``result`` as the answer to ``caller``'s ``request_id``, in the transaction of ``db``.

    A concurrent twin that committed first makes the insert fail on the
    unique key, rolling the creation back with it.
    """
    stamp = now()
    db.execute(
        delete(REQUESTS).where(
            REQUESTS.c.request_id.startswith(CORRELATION_PREFIX),
            REQUESTS.c.created < stamp - CORRELATION_KEPT,
        )
    )
    db.execute(
        insert(REQUESTS),
        {
            "caller": caller,
            "request_id": request_id,
            "method": method,
            "result": result,
            "created": stamp,
        },
    )
