"""Letting go of an RPC connection that a Ctrl+C cut in the middle of a call.

An interrupt can land between two frames of an AMQP exchange: the reply
consumer's socket may then hold half a frame, and the publisher's pooled
connection may owe a confirm. Closing either politely means another blocking
read on a connection in an unknown state (it can hang, or raise
``UnexpectedFrame``). So the sockets are dropped without a word to the broker
(the broker cleans up the exclusive reply queue when the socket goes), and
kombu's process-wide pools are emptied so that the next call, on a fresh
connection, cannot pick up a broken pooled one.
"""

import logging

from kombu import pools

from services.common.nameko_ext import reply_connection

log = logging.getLogger("services.client")


def abandon_proxy(proxy):
    """Drop a standalone proxy's sockets without any AMQP exchange."""
    try:
        reply_connection(proxy).collect()
    except Exception:  # noqa: BLE001 - a socket that is already gone is fine
        log.debug("dropping the interrupted RPC connection failed", exc_info=True)
    abandon_pools()


def abandon_pools():
    """Forget kombu's pooled connections and producers (their sockets close when collected)."""
    for group in (pools.producers, pools.connections):
        for pool in list(group.values()):
            for resource in list(getattr(pool, "_dirty", ())) + list(
                getattr(getattr(pool, "_resource", None), "queue", ())
            ):
                try:
                    connection = getattr(resource, "connection", resource)
                    if hasattr(connection, "collect"):
                        connection.collect()
                except Exception:  # noqa: BLE001 - best effort: the pool is forgotten anyway
                    log.debug("dropping a pooled connection failed", exc_info=True)
        group.clear()
