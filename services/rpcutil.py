"""The ``[code, value]`` convention, argument coercion and per-machine service names."""

import logging

from nameko.rpc import Rpc

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


class MirrorRpc(Rpc):
    """An RPC entrypoint that answers ``[0, value]`` or ``[-1, "message"]``, never raises."""

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
