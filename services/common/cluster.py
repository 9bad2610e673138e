"""Call any service by a name known only at run time (``jobrun_5``, ...).

One :class:`~nameko.rpc.ReplyListener` (one reply queue, one consumer) is
shared by every worker of the container; a call publishes on the pooled
producer connection, so no connection is set up per request. A request made
with :meth:`Services.call` expires with its timeout (``services.common.expiry``).
"""

import eventlet
from nameko.exceptions import RpcTimeout
from nameko.extensions import DependencyProvider
from nameko.rpc import ReplyListener, ServiceProxy

from services.common.expiry import DEADLINE_KEY
from services.common.nameko_ext import ExpiringMethodProxy, forget_reply


class Services:
    """What a worker sees: ``services.<name>.<method>`` or :meth:`call`."""

    __slots__ = ("_worker_ctx", "_listener")

    def __init__(self, worker_ctx, listener):
        self._worker_ctx = worker_ctx
        self._listener = listener

    def __getattr__(self, service):
        if service.startswith("__"):
            raise AttributeError(service)
        return ServiceProxy(self._worker_ctx, service, self._listener)

    def __getitem__(self, service):
        return ServiceProxy(self._worker_ctx, service, self._listener)

    def call(self, service, method, kwargs, timeout):
        """``service.method(**kwargs)``; raises ``RpcTimeout`` after ``timeout`` seconds.

        The request expires then too: nobody runs it once its caller gave up.
        ``UnknownService`` comes from the publish (no queue bound); every
        remote error (``MethodNotFound``, ``IncorrectSignature``,
        ``RemoteError``) from the reply.
        """
        proxy = ExpiringMethodProxy(
            self._worker_ctx, service, method, self._listener, timeout, DEADLINE_KEY
        )
        reply = proxy.call_async(**kwargs)
        timer = eventlet.Timeout(timeout)
        try:
            return reply.result()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            forget_reply(self._listener, reply.reply_event)
            raise RpcTimeout(f"{service}.{method}") from None
        finally:
            timer.cancel()


class DynamicRpc(DependencyProvider):
    """Dependency provider giving each worker a :class:`Services`."""

    reply_listener = ReplyListener()

    def get_dependency(self, worker_ctx):
        return Services(worker_ctx, self.reply_listener)
