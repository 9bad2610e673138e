"""The RPC connection of a client: one standalone proxy, calls one at a time, errors mapped.

``RpcClient.call`` returns the value of a ``[0, value]`` answer and raises
``MirrorError`` with the server's message for a ``[-1, "message"]`` one, or
with one readable line when the mesh cannot be asked.
"""

import logging
import threading
import warnings

# nameko imports eventlet, which announces its own deprecation on import.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from nameko.exceptions import (  # noqa: E402
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
)
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from services.client.abandon import abandon_proxy  # noqa: E402
from services.client.deferred import sigint_deferred  # noqa: E402
from services.common.expiry import DEADLINE_KEY  # noqa: E402
from services.common.nameko_ext import ExpiringMethodProxy, standalone_parts  # noqa: E402
from services.common.names import AGENT_SERVICES  # noqa: E402
from services.config import load_config, masked  # noqa: E402

log = logging.getLogger("services.client")

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost"

# Services named ``<base>_<rid>`` live on resource machine ``rid``.
_MACHINE_SERVICES = (*AGENT_SERVICES, "jobagent")


class MirrorError(RuntimeError):
    """An RPC answered ``[-1, message]``, or the mesh could not be asked.

    A ``RuntimeError``, so that the seed-001 style ``except RuntimeError`` catches it.

    ``str(error)`` is the server's message, unchanged; ``service`` and
    ``method`` name the call that failed.
    """

    def __init__(self, message, service=None, method=None):
        super().__init__(message)
        self.message = message
        self.service = service
        self.method = method


def _unknown_service(service):
    base, _, rid = service.rpartition("_")
    if base in _MACHINE_SERVICES and rid.isdigit():
        return f"resource machine {rid} does not answer (no {service} service is running)"
    return f"no {service} service is running on this broker and exchange"


class RpcClient:
    """The connection to one mesh and ``call(service, method, **kwargs)``.

    The connection opens on the first call and closes with ``close()`` (or at
    the end of a ``with`` block). One client may be shared by threads and green
    threads: calls go one at a time, since a standalone proxy is not safe for
    concurrent use.
    """

    def __init__(self, amqp_uri=None, exchange="mirror_com", timeout=30):
        self.amqp_uri = amqp_uri or DEFAULT_AMQP_URI
        self.exchange = exchange or "mirror_com"
        self.timeout = timeout
        self._lock = threading.RLock()
        self._proxy = None

    @classmethod
    def from_config(cls, path=None, timeout=None):
        """A client for the mesh of a configuration file (``services.config.load_config``)."""
        config = load_config(path)
        if timeout is None:
            timeout = (config.get("RPC") or {}).get("timeout", 30)
        return cls(config["AMQP_URI"], config["rpc_exchange"], timeout=timeout)

    def clone(self):
        """A new client, with a connection of its own, to the same mesh."""
        return type(self)(self.amqp_uri, self.exchange, self.timeout)

    def __repr__(self):
        return f"Mirror({masked(self.amqp_uri)!r}, exchange={self.exchange!r})"

    # -- connection -----------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            self._drop()

    def _drop(self):
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            try:
                proxy.stop()
            except Exception:  # noqa: BLE001 - a broken connection is closed all the same
                log.debug("closing the RPC proxy failed", exc_info=True)

    def _abandon(self):
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            abandon_proxy(proxy)

    def _connect(self):
        if self._proxy is None:
            config = {"AMQP_URI": self.amqp_uri, "rpc_exchange": self.exchange}
            proxy = ClusterRpcProxy(config, timeout=self.timeout)
            try:
                proxy.start()
            except KeyboardInterrupt:
                abandon_proxy(proxy)
                raise
            except Exception as exc:  # noqa: BLE001 - any failure to connect
                raise self._unreachable(exc) from exc
            self._proxy = proxy
        return self._proxy

    def _unreachable(self, exc, service=None, method=None):
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return MirrorError(
            f"cannot reach the RabbitMQ broker at {masked(self.amqp_uri)} ({reason})",
            service,
            method,
        )

    def call(self, service, method, **kwargs):
        """Call ``service.method(**kwargs)``; return the value or raise ``MirrorError``.

        The request expires with the timeout: nobody runs it once the call gave up.
        Ctrl+C waits for the call's answer, so the connection is never left mid-frame.
        """
        with sigint_deferred(), self._lock:
            worker_ctx, listener = standalone_parts(self._connect())
            try:
                proxy = ExpiringMethodProxy(
                    worker_ctx, service, method, listener, self.timeout, DEADLINE_KEY
                )
                answer = proxy(**kwargs)
            except UnknownService:
                raise MirrorError(_unknown_service(service), service, method) from None
            except RpcTimeout:
                raise MirrorError(
                    f"{service}.{method} did not answer within {self.timeout} s", service, method
                ) from None
            except MethodNotFound:
                raise MirrorError(
                    f"the {service} service has no method {method} (is the mesh up to date?)",
                    service,
                    method,
                ) from None
            except RemoteError as exc:
                raise MirrorError(
                    f"{service}.{method}: {exc.exc_type}: {exc.value}", service, method
                ) from None
            except (OSError, ConnectionError) as exc:
                self._drop()
                raise self._unreachable(exc, service, method) from exc
            except KeyboardInterrupt:
                # The connection may be half way through a frame: let go of it without
                # another read, and start afresh next time.
                self._abandon()
                raise
        if not isinstance(answer, list | tuple) or len(answer) != 2:
            raise MirrorError(
                f"{service}.{method} answered {answer!r}, not [code, value]", service, method
            )
        code, value = answer
        if code != 0:
            raise MirrorError(str(value), service, method)
        return value
