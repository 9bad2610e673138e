"""``/proxy/<service>-<method>``: small steps, each reusable by other routes.

Each check raises :class:`HttpError` with the status and the message of the
``[-1, "message"]`` answer; :func:`handle_proxy` strings them together.
"""

import fnmatch
import hmac
import json
import logging
import re
import time

from kombu.exceptions import OperationalError
from nameko.exceptions import (
    IncorrectSignature,
    MalformedRequest,
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
)

from .web import error_response, json_response

log = logging.getLogger(__name__)

_INT = re.compile(r"-?[0-9]+")
_SERVICE = re.compile(r"[A-Za-z0-9_]+")
_MAX_MESSAGE = 500


class HttpError(Exception):
    """An answer other than 200: HTTP ``status`` and a short ``message``."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers

    def response(self):
        return error_response(self.status, self.message, self.headers)


def parse_target(target):
    """``"jobrun_5-do"`` -> ``("jobrun_5", "do")``, split at the first ``-``."""
    service, sep, method = target.partition("-")
    if not sep or not _SERVICE.fullmatch(service) or not method.isidentifier():
        raise HttpError(400, _short(f"malformed target {target!r}: use /proxy/<service>-<method>"))
    return service, method


def coerce_value(text):
    """Digits with an optional leading ``-`` become an int (``"05"`` -> 5); the rest stay strings."""
    if _INT.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # beyond Python's int-from-string digit limit
            pass
    return text


def query_kwargs(args):
    """Keyword arguments from a werkzeug ``MultiDict``; a repeated key keeps its last value."""
    return {key: coerce_value(value) for key, value in args.items(multi=True)}


def check_token(authorization, tokens):
    """401 unless ``tokens`` is empty or ``authorization`` is ``Bearer <one of them>``."""
    if not tokens:
        return
    scheme, _, given = (authorization or "").strip().partition(" ")
    given = given.strip().encode()
    ok = False
    if scheme.lower() == "bearer" and given:
        for token in tokens:
            ok |= hmac.compare_digest(given, token.encode())
    if not ok:
        raise HttpError(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})


def check_exposed(service, patterns):
    """403 unless ``service`` matches one of the fnmatch ``patterns``."""
    if not any(fnmatch.fnmatchcase(service, pattern) for pattern in patterns):
        raise HttpError(403, f"service {service} is not exposed")


def read_body(environ, max_body):
    """The request body, at most ``max_body`` bytes (413 beyond)."""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.strip().isdigit() and int(length) > max_body:
        raise HttpError(413, f"request body larger than {max_body} bytes")
    stream = environ.get("wsgi.input")
    # Read through the server's own stream: it also decodes a chunked body,
    # which werkzeug's request.stream would present as empty.
    data = stream.read(max_body + 1) if stream is not None else b""
    if len(data) > max_body:
        raise HttpError(413, f"request body larger than {max_body} bytes")
    return data


def json_kwargs(data):
    """Keyword arguments from a JSON object body (an empty body is no arguments)."""
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise HttpError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise HttpError(400, "request body must be a JSON object of keyword arguments")
    return value


def _short(text):
    text = str(text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _seconds(timeout):
    return f"{timeout:g}"


def rpc_error(exc, service, method, timeout):
    """Map what a call raised to an :class:`HttpError`."""
    where = f"{service}.{method}"
    if isinstance(exc, UnknownService):
        return HttpError(404, f"unknown service: {service}")
    if isinstance(exc, MethodNotFound):
        return HttpError(404, f"service {service} has no method {method}")
    if isinstance(exc, IncorrectSignature):
        return HttpError(400, _short(f"bad arguments for {where}: {exc}"))
    if isinstance(exc, MalformedRequest):
        return HttpError(400, _short(f"malformed request for {where}: {exc}"))
    if isinstance(exc, RpcTimeout):
        return HttpError(504, f"{where} did not answer within {_seconds(timeout)} s")
    if isinstance(exc, RemoteError):
        return HttpError(500, _short(f"{where} failed: {exc.exc_type}: {exc.value}"))
    if isinstance(exc, (OperationalError, OSError)):
        return HttpError(503, _short(f"message broker unavailable: {exc}"))
    return HttpError(500, _short(f"{where} failed: {type(exc).__name__}: {exc}"))


def call(services, service, method, kwargs, timeout):
    """``service.method(**kwargs)`` through :class:`services.cluster.Services`, errors mapped."""
    try:
        return services.call(service, method, kwargs, timeout)
    except Exception as exc:
        raise rpc_error(exc, service, method, timeout) from None


def proxy_result(request, target, settings, services):
    """Run every step of one ``/proxy`` request; returns the RPC's result."""
    check_token(request.headers.get("Authorization"), settings.tokens)
    service, method = parse_target(target)
    check_exposed(service, settings.expose)
    kwargs = query_kwargs(request.args)
    if request.method == "POST":
        kwargs.update(json_kwargs(read_body(request.environ, settings.max_body)))
    return call(services, service, method, kwargs, settings.timeout)


def handle_proxy(request, target, settings, services):
    """The whole ``/proxy/<target>`` route: a JSON response, logged at INFO."""
    started = time.monotonic()
    try:
        response = json_response(200, proxy_result(request, target, settings, services))
    except HttpError as exc:
        response = exc.response()
        log_request(request, target, exc.status, started, exc.message)
    else:
        log_request(request, target, 200, started)
    return response


def no_route(request):
    """Answer for a path no route serves (JSON, not werkzeug's HTML)."""
    started = time.monotonic()
    path = request.path
    if path.startswith("/proxy/") or path == "/proxy":
        if request.method not in ("GET", "HEAD", "POST"):
            error = HttpError(
                405, f"method {request.method} not allowed on {path}", {"Allow": "GET, HEAD, POST"}
            )
        else:
            error = HttpError(400, f"malformed target: use /proxy/<service>-<method>, not {path}")
    else:
        error = HttpError(404, f"no route: {path}")
    log_request(request, path, error.status, started, error.message)
    return error.response()


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
