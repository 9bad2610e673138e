"""The gateway's routes: ``/proxy/<service>-<method>``, the Slurm-style REST API, no route.

Each ``handle_*`` function serves one URL rule of :class:`gateway.service.GatewayService`
through :func:`serve`: token, method, then the route's action, with every
failure answered as JSON in the route's shape (:data:`gateway.web.PROXY` or
:data:`gateway.web.REST`) and one INFO line per request.
"""

import fnmatch
import hmac
import logging
import time

from . import mesh
from .errors import (
    BadRequest,
    GatewayError,
    InternalError,
    JobNotRunning,
    MethodNotAllowed,
    NotExposed,
    NotFound,
    Unauthorized,
)
from .formatting import health_report, job_response
from .parsing import (
    json_kwargs,
    parse_body,
    parse_job_id,
    parse_target,
    query_kwargs,
    read_body,
    submit_kwargs,
)
from .web import PROXY, REST, proxy_error

log = logging.getLogger(__name__)

CANCELLED_MESSAGE = "取消成功"


def check_token(authorization, tokens):
    """401 unless ``tokens`` is empty or ``authorization`` is ``Bearer <one of them>``."""
    if not tokens:
        return
    scheme, _, given = (authorization or "").strip().partition(" ")
    given = given.strip().encode()
    ok = False
    # Compare with every token, whatever matches, so the time taken tells nothing.
    if scheme.lower() == "bearer" and given:
        for token in tokens:
            ok |= hmac.compare_digest(given, token.encode())
    if not ok:
        raise Unauthorized("missing or wrong bearer token")


def check_exposed(service, patterns):
    """403 unless ``service`` matches one of the fnmatch ``patterns``."""
    if not any(fnmatch.fnmatchcase(service, pattern) for pattern in patterns):
        raise NotExposed(f"service {service} is not exposed")


def serve(request, settings, action, shape, methods=None, target=None):
    """Token, method, then ``action()``'s ``(status, payload)``; every failure as JSON.

    ``target`` names the request in the log line (default: its path).
    """
    started = time.monotonic()
    target = target or request.path
    try:
        check_token(request.headers.get("Authorization"), settings.tokens)
        if methods and request.method not in methods:
            raise MethodNotAllowed(request.method, target, ", ".join(methods))
        status, payload = action()
        response = shape.ok(status, payload)
        log_request(request, target, status, started)
    except GatewayError as exc:
        response = shape.error(exc)
        log_request(request, target, exc.status, started, exc.message)
    except Exception as exc:  # noqa: BLE001 - a bug must still answer JSON
        log.exception("%s %s failed", request.method, target)
        response = shape.error(InternalError(f"internal error: {type(exc).__name__}"))
        log_request(request, target, 500, started, type(exc).__name__)
    return response


def handle_proxy(request, target, settings, services):
    """``/proxy/<service>-<method>``: the RPC's own ``[code, value]`` answer."""

    def action():
        service, method = parse_target(target)
        check_exposed(service, settings.expose)
        kwargs = query_kwargs(request.args)
        if request.method == "POST":
            kwargs.update(json_kwargs(read_body(request.environ, settings.max_body)))
        return 200, mesh.call(services, service, method, kwargs, settings.timeout)

    return serve(request, settings, action, PROXY, target=target)


def handle_submit(request, settings, services):
    def action():
        kwargs = submit_kwargs(parse_body(read_body(request.environ, settings.max_body)))
        return 200, {"job_id": str(mesh.submit_job(services, kwargs, settings.timeout))}

    return serve(request, settings, action, REST, ("POST",))


def handle_query(request, job_id, settings, services):
    def action():
        job, logs, node = mesh.query_job(services, parse_job_id(job_id), settings.timeout)
        return 200, job_response(job, logs, node)

    return serve(request, settings, action, REST, ("GET", "HEAD"))


def handle_cancel(request, job_id, settings, services):
    def action():
        try:
            mesh.cancel_job(services, parse_job_id(job_id), settings.timeout)
        except JobNotRunning:
            pass  # cancelling a job that has already ended changes nothing: it succeeds
        return 200, {"msg": CANCELLED_MESSAGE}

    return serve(request, settings, action, REST, ("POST",))


def handle_health(request, settings, services):
    def action():
        timeout = min(settings.timeout, mesh.SIDE_TIMEOUT)
        machines, failure = mesh.machines_or_failure(services, timeout)
        return health_report(machines, failure)

    return serve(request, settings, action, REST, ("GET", "HEAD"))


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
