"""The gateway's routes: ``/proxy/<service>-<method>``, the Slurm-style REST API, no route.

Each ``handle_*`` function serves one URL rule of :class:`gateway.service.GatewayService`
through :func:`serve`: caller (:mod:`gateway.auth`), method, then the route's
action, with every failure answered as JSON in the route's shape
(:data:`gateway.web.PROXY` or :data:`gateway.web.REST`) and one INFO line per
request. Every route obeys the same rule for what it calls: nothing internal
to the mesh (:mod:`services.common.surface`), nothing outside ``GATEWAY.expose``.
"""

import fnmatch
import logging
import time

from services.common.surface import is_internal, is_machine_service

from . import mesh
from .auth import Authenticator, Door
from .errors import (
    BadRequest,
    GatewayError,
    InternalError,
    JobNotRunning,
    MethodNotAllowed,
    NotExposed,
    NotFound,
)
from .events import handle_events
from .files import handle_file
from .formatting import health_report, job_response
from .metrics import handle_metrics, observe_request
from .parsing import (
    json_kwargs,
    parse_body,
    parse_job_id,
    parse_target,
    query_kwargs,
    read_body,
    submit_kwargs,
)
from .web import PROXY, REST, STREAM, proxy_error

log = logging.getLogger(__name__)

CANCELLED_MESSAGE = "取消成功"


def check_exposed(service, patterns):
    """403 unless ``service`` matches one of the fnmatch ``patterns``."""
    if not any(fnmatch.fnmatchcase(service, pattern) for pattern in patterns):
        raise NotExposed(f"service {service} is not exposed")


def check_callable(service, method, patterns):
    """403 for a call internal to the mesh, whatever ``patterns`` say, or one not exposed."""
    if is_internal(service, method):
        raise NotExposed(f"{service}.{method} is internal to the mesh")
    check_exposed(service, patterns)


def door_of(settings, door):
    """``door``, or one over a fresh :class:`Authenticator` of ``settings`` (no cache shared)."""
    return door if door is not None else Door(Authenticator(settings, settings.address), {})


def authorization(request, query_token=False):
    """The request's ``Authorization`` header; with ``query_token``, ``?token=`` stands for it.

    EventSource and plain links cannot set headers: the routes they use take the
    token from the query.
    """
    given = request.headers.get("Authorization")
    token = request.args.get("token") if query_token else None
    if not given and token:
        return f"Bearer {token}"
    return given


def serve(
    request,
    settings,
    services,
    door,
    action,
    shape,
    methods=None,
    target=None,
    route=None,
    query_token=False,
):
    """Caller, method, then ``action(identity)``'s ``(status, payload)``; every failure as JSON.

    ``target`` names the request in the log line (default: its path), ``route``
    its URL rule in the metrics (default: ``target``).
    """
    started = time.monotonic()
    target = target or request.path
    route = route or target
    try:
        given = authorization(request, query_token)
        identity = door_of(settings, door).admit(given, services)
        if methods and request.method not in methods:
            raise MethodNotAllowed(request.method, target, ", ".join(methods))
        status, payload = action(identity)
        response = shape.ok(status, payload)
        log_request(request, target, status, started)
    except GatewayError as exc:
        response = shape.error(exc)
        log_request(request, target, exc.status, started, exc.message)
    except Exception as exc:  # noqa: BLE001 - a bug must still answer JSON
        log.exception("%s %s failed", request.method, target)
        response = shape.error(InternalError(f"internal error: {type(exc).__name__}"))
        log_request(request, target, 500, started, type(exc).__name__)
    observe_request(route, response.status_code, time.monotonic() - started)
    return response


def handle_proxy(request, target, settings, services, door=None):
    """``/proxy/<service>-<method>``: the RPC's own ``[code, value]`` answer."""

    def action(identity):
        service, method = parse_target(target)
        check_callable(service, method, settings.expose)
        kwargs = query_kwargs(request.args)
        if request.method == "POST":
            kwargs.update(json_kwargs(read_body(request.environ, settings.max_body)))
        if not identity.admin and is_machine_service(service):
            # Agents act for whoever reaches them: central says first whether
            # the caller owns the job (someone else's answers as missing).
            owned = mesh.call(
                services, "job", "owned", {"job_id": kwargs.get("job_id")}, settings.timeout
            )
            if owned[0] != 0:
                return 200, owned
        return 200, mesh.call(services, service, method, kwargs, settings.timeout)

    return serve(request, settings, services, door, action, PROXY, target=target, route="/proxy")


def handle_submit(request, settings, services, door=None):
    def action(identity):
        check_callable("jobdispatch", "submit", settings.expose)
        kwargs = submit_kwargs(parse_body(read_body(request.environ, settings.max_body)))
        return 200, {"job_id": str(mesh.submit_job(services, kwargs, settings.timeout))}

    return serve(request, settings, services, door, action, REST, ("POST",), route="/jobs/submit")


def handle_query(request, job_id, settings, services, door=None):
    def action(identity):
        check_callable("job", "query", settings.expose)
        job, logs, node = mesh.query_job(services, parse_job_id(job_id), settings.timeout)
        return 200, job_response(job, logs, node)

    return serve(
        request, settings, services, door, action, REST, ("GET", "HEAD"), route="/jobs/query"
    )


def handle_cancel(request, job_id, settings, services, door=None):
    def action(identity):
        check_callable("job", "cancel", settings.expose)
        try:
            mesh.cancel_job(services, parse_job_id(job_id), settings.timeout)
        except JobNotRunning:
            pass  # cancelling a job that has already ended changes nothing: it succeeds
        return 200, {"msg": CANCELLED_MESSAGE}

    return serve(request, settings, services, door, action, REST, ("POST",), route="/jobs/cancel")


def handle_health(request, settings, services, door=None):
    def action(identity):
        timeout = min(settings.timeout, mesh.SIDE_TIMEOUT)
        machines, failure = mesh.machines_or_failure(services, timeout)
        return health_report(machines, failure)

    return serve(request, settings, services, door, action, REST, ("GET", "HEAD"), route="/health")


def handle_event_stream(request, settings, services, door, hub):
    """``/events``: Server-Sent Events of what the caller may see (``gateway.events``)."""

    def action(identity):
        return 200, handle_events(request, identity, hub, services, settings.timeout)

    return serve(
        request,
        settings,
        services,
        door,
        action,
        STREAM,
        ("GET",),
        route="/events",
        query_token=True,
    )


def handle_files(request, job_id, kind, key, settings, services, door, ftp_config):
    """``/files/jobs/<id>/<process|result>/<key>``: a published file (``gateway.files``)."""

    def action(identity):
        check_callable("jobgetdata", "do", settings.expose)
        return 200, handle_file(request, services, ftp_config, job_id, kind, key, settings.timeout)

    return serve(
        request,
        settings,
        services,
        door,
        action,
        STREAM,
        ("GET", "HEAD"),
        route="/files",
        query_token=True,
    )


def handle_metrics_route(request, settings, services, door):
    """``/metrics``: Prometheus' text format (``gateway.metrics``)."""

    def action(identity):
        return 200, handle_metrics(services, settings.timeout)

    return serve(request, settings, services, door, action, STREAM, ("GET",), route="/metrics")


def no_route(request):
    """Answer for a path no route serves (JSON, not werkzeug's HTML)."""
    started = time.monotonic()
    path = request.path
    if path.startswith("/proxy/") or path == "/proxy":
        if request.method not in ("GET", "HEAD", "POST"):
            error = MethodNotAllowed(request.method, path, "GET, HEAD, POST")
        else:
            error = BadRequest(f"malformed target: use /proxy/<service>-<method>, not {path}")
    else:
        error = NotFound(f"no route: {path}")
    log_request(request, path, error.status, started, error.message)
    observe_request("none", error.status, time.monotonic() - started)
    return proxy_error(error)


def log_request(request, target, status, started, message=""):
    """One INFO line per request: method, target, status, time (and the error)."""
    log.info(
        "%s %s -> %d (%.1f ms)%s",
        request.method,
        target,
        status,
        (time.monotonic() - started) * 1000,
        f": {message}" if message else "",
    )
