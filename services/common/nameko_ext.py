"""Every use of a nameko (or stdlib) internal, in one place.

Each was checked against nameko 2.14.1 on CPython 3.11; setup.cfg pins that
nameko. An upgrade re-reads this module first: everything here leans on an
attribute or method nameko does not document.
"""

import subprocess

from kombu.common import maybe_declare
from kombu.messaging import Consumer
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.rpc import Responder, RpcConsumer, get_rpc_exchange
from nameko.standalone.rpc import PollingQueueConsumer, SingleThreadedReplyListener


class ReplyPublisher(Publisher):
    """Publishes RPC replies without waiting for the broker's confirm.

    A confirm would add a round trip to every call and buy nothing: a reply
    the broker loses times out at the caller, confirmed or not, and every
    Mirror call is safe to send again.
    """

    use_confirms = False


class FastResponder(Responder):
    publisher_cls = ReplyPublisher


class MirrorRpcConsumer(RpcConsumer):
    """nameko's RPC consumer with `FastResponder` replies (the same wire format).

    Internal: re-implements ``RpcConsumer.handle_result`` (nameko 2.14.1) to
    swap the responder class, which nameko does not make configurable.
    """

    def handle_result(self, message, result, exc_info):
        config = self.container.config
        responder = FastResponder(
            config[AMQP_URI_CONFIG_KEY],
            get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class UnackedReplies(PollingQueueConsumer):
    """nameko's standalone reply consumer, without an ack per reply.

    The reply queue is the proxy's own and an unanswered call is retried, so
    the broker need not keep a reply until it is acknowledged; one frame
    less each way per call.

    Internal: overrides ``PollingQueueConsumer._setup_consumer`` (nameko
    2.14.1), which nameko calls at start and again after a timeout or a lost
    connection.
    """

    def _setup_consumer(self):
        if self.consumer is not None:
            try:
                self.consumer.cancel()
            except OSError:
                pass  # the connection is already gone, and the consumer with it
        channel = self.connection.channel()
        self.queue = self.queue.bind(channel)
        maybe_declare(self.queue, channel)
        self.consumer = Consumer(channel, queues=[self.queue], accept=self.accept, no_ack=True)
        self.consumer.callbacks = [self.on_message]
        self.consumer.consume()

    def ack_message(self, msg):
        pass


class UnackedReplyListener(SingleThreadedReplyListener):
    """A standalone reply listener that consumes with `UnackedReplies`.

    Internal: replaces the ``queue_consumer`` attribute nameko 2.14.1 sets in
    ``SingleThreadedReplyListener.__init__``.
    """

    def __init__(self, timeout=None):
        super().__init__(timeout=timeout)
        self.queue_consumer = UnackedReplies(timeout=timeout)


def forget_reply(listener, event):
    """Drop a pending call's reply event from a container ``ReplyListener``.

    The listener keeps one event per pending call until its reply arrives; a
    call given up on would leak it (a late reply is then ignored). Internal:
    ``ReplyListener._reply_events`` of nameko 2.14.1, a dict of correlation id
    to event.
    """
    pending = listener._reply_events
    for key, value in list(pending.items()):
        if value is event:
            del pending[key]
            break


def disown_process(proc):
    """Stop ``subprocess`` from reaping ``proc``: the caller owns ``waitpid`` for its pid.

    Internal: CPython 3.11 keeps unreaped ``Popen`` objects in
    ``subprocess._active`` and polls them on every new ``Popen``, which would
    steal the exit status from our own wait.
    """
    proc.returncode = 0
    subprocess._active = [p for p in getattr(subprocess, "_active", []) if p is not proc]
