"""The ``[code, value]`` convention of every Mirror RPC method, and argument coercion."""

from services.common.errors import EXPECTED, MirrorError
from services.common.nameko_ext import CorrelatedRpc, MirrorRpcConsumer


def envelope(result, exc_info):
    """Turn a worker's outcome into ``([code, value], None)``."""
    if exc_info is None:
        return [0, result], None
    exc = exc_info[1]
    if isinstance(exc, EXPECTED):
        return [-1, str(exc)], None
    # Unexpected: nameko has logged the traceback; the caller gets one line.
    return [-1, f"internal error: {type(exc).__name__}: {exc}"], None


class MirrorRpc(CorrelatedRpc):
    """An RPC entrypoint that answers ``[0, value]`` or ``[-1, "message"]``, never raises.

    Its worker knows the request's correlation id (``CorrelatedRpc``).
    """

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


def page_limit(value, *, optional=False):
    """The ``limit`` of a list: an integer (or its string) that is not negative."""
    limit = to_int(value, "limit", optional=optional)
    if limit is not None and limit < 0:
        raise MirrorError(f"limit must not be negative, got {limit}")
    return limit
