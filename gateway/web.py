"""JSON answers in the gateway's two shapes, and an ``@http`` entrypoint that always answers JSON.

``/proxy`` answers the RPC's own ``[code, value]`` and errors as ``[-1, "message"]``
(SPEC 8); the REST routes answer the seeds' objects and errors as FastAPI's
``{"detail": "message"}``.

Use :data:`http` instead of ``nameko.web.handlers.http`` for gateway routes:
``@http("GET,POST", "/path/<x>")`` as usual, and ``"*"`` for every method. It
shares nameko's ``WebServer``, so it mixes with plain ``@http`` routes.
"""

import json
import logging
from collections.abc import Callable
from typing import NamedTuple

from nameko.exceptions import BadRequest as NamekoBadRequest
from nameko.web.handlers import HttpRequestHandler
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from .errors import BadRequest, InternalError

log = logging.getLogger(__name__)

JSON = "application/json"


def json_response(status, payload, headers=None):
    """``payload`` as a JSON HTTP response, non-ASCII text escaped."""
    body = json.dumps(payload, separators=(",", ":"))
    return Response(body, status=status, mimetype=JSON, headers=headers)


def proxy_error(exc):
    """The ``/proxy`` error shape of SPEC 8: ``[-1, "message"]``."""
    return json_response(exc.status, [-1, str(exc.message)], exc.headers)


def rest_response(status, payload, headers=None):
    """JSON in UTF-8, non-ASCII text as it is (``{"msg": "取消成功"}``, not ``\\u53d6...``)."""
    try:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate from a client: escape everything
        body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(body, status=status, mimetype=JSON, headers=headers)


def rest_error(exc):
    """The REST error shape of the seeds' service: ``{"detail": "message"}``."""
    return rest_response(exc.status, {"detail": exc.message}, exc.headers)


class Shape(NamedTuple):
    """How a family of routes answers: ``ok(status, payload)`` and ``error(exc)``."""

    ok: Callable
    error: Callable


PROXY = Shape(json_response, proxy_error)
REST = Shape(rest_response, rest_error)
# Routes that answer a response of their own (a stream, a file, metrics); errors as REST's.
STREAM = Shape(lambda status, response: response, rest_error)


class JsonHttpRequestHandler(HttpRequestHandler):
    """nameko's HTTP entrypoint, with ``"*"`` for all methods and JSON errors."""

    def get_url_rule(self):
        methods = None if self.method.strip() == "*" else self.method.split(",")
        # No merging of "//": werkzeug would answer that with an HTML redirect.
        return Rule(self.url, methods=methods, merge_slashes=False)

    def response_from_exception(self, exc):
        # Only reached when a handler lets an exception out (a bug, or a bad
        # signature); the message never carries a traceback.
        if isinstance(exc, self.expected_exceptions) or isinstance(exc, NamekoBadRequest):
            return proxy_error(BadRequest(f"bad request: {exc}"))
        log.error("unhandled error in %s: %r", self.method_name, exc)
        return proxy_error(InternalError(f"internal error: {type(exc).__name__}"))


http = JsonHttpRequestHandler.decorator
