"""The ``[code, value]`` convention, argument coercion and per-machine service names."""

import logging

from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.rpc import Responder, Rpc, RpcConsumer, get_rpc_exchange

from adapters.errors import AdapterError

log = logging.getLogger(__name__)

AGENT_SERVICES = (
    "jobdirbuild",
    "jobfilebuild",
    "jobrun",
    "jobprocessmonitor",
    "jobresultrecovery",
    "jobkill",
    "jobdelete",
)


class MirrorError(Exception):
    """An expected error: the caller gets ``[-1, str(error)]``."""


EXPECTED = (MirrorError, AdapterError)


def envelope(result, exc_info):
    """Turn a worker's outcome into ``([code, value], None)``."""
    if exc_info is None:
        return [0, result], None
    exc = exc_info[1]
    if isinstance(exc, EXPECTED):
        return [-1, str(exc)], None
    # Unexpected: nameko has logged the traceback; the caller gets one line.
    return [-1, f"internal error: {type(exc).__name__}: {exc}"], None


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
    """nameko's RPC consumer with `FastResponder` replies (the same wire format)."""

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


class MirrorRpc(Rpc):
    """An RPC entrypoint that answers ``[0, value]`` or ``[-1, "message"]``, never raises."""

    rpc_consumer = MirrorRpcConsumer()

    def handle_result(self, message, worker_ctx, result, exc_info):
        result, exc_info = envelope(result, exc_info)
        return super().handle_result(message, worker_ctx, result, exc_info)


def mirror_rpc(fn):
    """Expose ``fn`` over RPC with Mirror's ``[code, value]`` answers."""
    return MirrorRpc.decorator(expected_exceptions=EXPECTED)(fn)


def to_int(value, name, *, optional=False):
    """Accept an int or its decimal string form (``"2"``), else an expected error."""
    if value is None and optional:
        return None
    if isinstance(value, bool):
        raise MirrorError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    raise MirrorError(f"{name} must be an integer, got {value!r}")


def service_name(base, rid):
    """The name of a per-machine service: ``service_name("jobrun", 5) == "jobrun_5"``."""
    return f"{base}_{int(rid)}"


def queue_name(rid):
    """The durable queue that holds the job ids of resource machine ``rid``."""
    return f"mirror.jobs.rid{int(rid)}"


def job_missing(job_id):
    return MirrorError(f"job is not existed , job : {job_id}")


def package_missing(c_id):
    return MirrorError(f"calcpackage is not existed , calcpackage : {c_id}")


def project_missing(p_id):
    return MirrorError(f"project is not existed , project : {p_id}")
