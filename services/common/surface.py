"""The RPC surface split in two: calls for users, and calls internal to the mesh.

Internal calls (claims, reports, fetches, heartbeats, an agent's own service,
the user registry) serve the parts of the mesh; the gateway never forwards
them, whatever ``GATEWAY.expose`` says. Every pattern is an fnmatch pattern
of ``service.method``.
"""

import fnmatch
import re

from services.common.names import AGENT_SERVICES

#: ``service.method`` patterns only the mesh itself calls.
INTERNAL = (
    "job.fetch",
    "job.claim",
    "job.report",
    "job.batch",
    "job.remove",
    "job.owned",
    "machine.heartbeat",
    "jobagent_*.*",
    "user.*",
)

#: Calls a user may make although a pattern of :data:`INTERNAL` covers them.
PUBLIC = ("user.whoami",)

#: The services users call, the default of ``GATEWAY.expose``.
USER_SERVICES = (
    "project",
    "calcpackage",
    "jobdispatch",
    "job",
    "jobgetdata",
    "sweep",
    "machine",
    "user",
    *(f"{base}_*" for base in AGENT_SERVICES),
)

_MACHINE_SERVICE = re.compile(rf"(?:{'|'.join(AGENT_SERVICES)})_\d+")


def _matches(target, patterns):
    return any(fnmatch.fnmatchcase(target, pattern) for pattern in patterns)


def is_internal(service, method):
    """True when ``service.method`` is for the mesh alone."""
    target = f"{service}.{method}"
    return _matches(target, INTERNAL) and not _matches(target, PUBLIC)


def is_machine_service(service):
    """True for a per-machine service that acts on a job (``jobrun_5``, ...)."""
    return _MACHINE_SERVICE.fullmatch(service) is not None
