"""Every use of a nameko (or stdlib) internal, in one place.

Each was checked against nameko 2.14.1 on CPython 3.11; setup.cfg pins that
nameko. An upgrade re-reads this module first: everything here leans on an
attribute or method nameko does not document.
"""

import inspect
import subprocess
import time

from kombu.common import maybe_declare
from kombu.messaging import Consumer
from nameko.amqp.publish import Publisher, get_producer
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_RETRY_POLICY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.rpc import MethodProxy, Responder, Rpc, RpcConsumer, get_rpc_exchange
from nameko.standalone.rpc import PollingQueueConsumer, SingleThreadedReplyListener


class ReplyPublisher(Publisher):
    """Publishes RPC replies without waiting for the broker's confirm.

    A confirm would add a round trip to every call and buy nothing: a reply
    the broker loses times out at the caller, confirmed or not, and every
    Mirror call is safe to send again.
    """

    use_confirms = False


def publish_unconfirmed(amqp_uri, messages, exchange, **options):
    """Publish ``(body, routing_key)`` pairs on ``exchange`` through one pooled producer.

    No broker confirm: for messages whose loss a reader makes up for (the
    event stream resumes from the log by id). One producer for the lot,
    rather than nameko's ``Publisher.publish`` per message, which takes a
    producer from the pool and waits for a confirm each time; and their
    frames go to the socket together (`WriteBatch`), not one send each.
    """
    with get_producer(amqp_uri, False) as producer:
        # Declared before the frames are held back: a declaration waits for its answer.
        maybe_declare(exchange, producer.channel, retry=True, **DEFAULT_RETRY_POLICY)
        with WriteBatch(producer):
            for body, routing_key in messages:
                producer.publish(
                    body,
                    exchange=exchange,
                    routing_key=routing_key,
                    declare=[exchange],
                    retry=True,
                    retry_policy=DEFAULT_RETRY_POLICY,
                    **options,
                )


class WriteBatch:
    """Within the block, the frames a kombu producer writes reach its socket in few sends.

    Internal: py-amqp's transport sends each frame through its ``_write``
    attribute (``socket.sendall``, py-amqp 5); the block swaps it for a
    buffer, sent every `LIMIT` bytes and at the end. On a loopback broker
    each send costs more CPU than building the message.
    """

    LIMIT = 1 << 20

    def __init__(self, producer):
        connection = getattr(producer.channel, "connection", None)
        self.transport = getattr(connection, "transport", None)
        self.send = getattr(self.transport, "_write", None)
        self.chunks, self.size = [], 0

    def _add(self, data):
        # The frame writer reuses its buffer: a copy is kept.
        self.chunks.append(bytes(data))
        self.size += len(data)
        if self.size >= self.LIMIT:
            self.flush()

    def flush(self):
        if self.chunks:
            data, self.chunks, self.size = b"".join(self.chunks), [], 0
            self.send(data)

    def __enter__(self):
        if self.send is not None:
            self.transport._write = self._add
        return self

    def __exit__(self, kind, value, trace):
        if self.send is None:
            return
        self.transport._write = self.send
        if kind is None:
            self.flush()


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


#: Context data key of the correlation id of the request a worker serves.
CORRELATION_KEY = "mirror_correlation_id"


class CorrelatedRpc(Rpc):
    """nameko's RPC entrypoint, giving the worker its request's correlation id.

    A broker redelivers a request it never saw acknowledged (nameko acks
    after the handler returns) with the same correlation id, so the id names
    the request across deliveries. The worker finds it in its context data
    under :data:`CORRELATION_KEY`, always the id of this very message: a
    value the caller sent there is replaced.

    Internal: overrides ``HeaderDecoder.unpack_message_headers`` (nameko
    2.14.1), which ``Rpc.handle_message`` calls once per message to build the
    worker's context data; the id is ``message.properties["correlation_id"]``.
    """

    def unpack_message_headers(self, message):
        data = super().unpack_message_headers(message)
        data.pop(CORRELATION_KEY, None)
        correlation_id = message.properties.get("correlation_id")
        if correlation_id:
            data[CORRELATION_KEY] = str(correlation_id)
        return data


def keep_signature(wrapper, fn):
    """Make nameko check a call's arguments against ``fn``'s signature, not ``wrapper``'s.

    Internal: ``Entrypoint.check_signature`` (nameko 2.14.1) binds the
    arguments with ``inspect.getcallargs``, which reads ``__signature__``
    but does not follow ``__wrapped__``; a bad call then fails as
    ``IncorrectSignature`` before any worker runs, as it does unwrapped.
    """
    wrapper.__signature__ = inspect.signature(fn)
    return wrapper


class ExpiringMethodProxy(MethodProxy):
    """A method proxy whose requests expire: AMQP ``expiration`` plus a deadline in context data.

    The broker drops a request nobody consumed within ``timeout`` seconds;
    ``deadline_key`` (epoch seconds) lets the consumer drop one it took too
    late. A ``timeout`` of None waits for ever: no expiry.

    Internal: overrides ``HeaderEncoder.get_message_headers`` (nameko 2.14.1),
    which ``MethodProxy._call`` calls once per request; ``expiration`` is a
    ``Publisher`` option, in seconds as kombu takes it.
    """

    def __init__(self, worker_ctx, service, method, listener, timeout, deadline_key):
        super().__init__(worker_ctx, service, method, listener, expiration=timeout)
        self.extra_data = {} if timeout is None else {deadline_key: time.time() + timeout}

    def get_message_headers(self, worker_ctx):
        headers = super().get_message_headers(worker_ctx)
        headers.update({self._get_header_name(k): v for k, v in self.extra_data.items()})
        return headers


def standalone_parts(proxy):
    """``(worker context, reply listener)`` of a started standalone ``ClusterRpcProxy``.

    Internal: ``StandaloneProxyBase._worker_ctx`` and ``._reply_listener`` of
    nameko 2.14.1, what its ``ClusterProxy`` builds each method proxy from.
    """
    return proxy._worker_ctx, proxy._reply_listener


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


def reply_connection(proxy):
    """The kombu connection on which a standalone ``ClusterRpcProxy`` consumes its replies.

    Internal: ``ClusterRpcProxy._reply_listener.queue_consumer.connection`` of
    nameko 2.14.1 (a ``SingleThreadedReplyListener`` over a ``PollingQueueConsumer``).
    """
    return proxy._reply_listener.queue_consumer.connection
