"""An ``@http`` entrypoint whose every answer, errors included, is JSON.

Use :data:`http` instead of ``nameko.web.handlers.http`` for gateway routes:
``@http("GET,POST", "/path/<x>")`` as usual, and ``"*"`` for every method. It
shares nameko's ``WebServer``, so it mixes with plain ``@http`` routes.
"""

import json
import logging

from nameko.exceptions import BadRequest
from nameko.web.handlers import HttpRequestHandler
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

JSON = "application/json"


def json_response(status, payload, headers=None):
    """``payload`` as a JSON HTTP response."""
    body = json.dumps(payload, separators=(",", ":"))
    return Response(body, status=status, mimetype=JSON, headers=headers)


def error_response(status, message, headers=None):
    """The error shape of SPEC 8: ``[-1, "message"]``."""
    return json_response(status, [-1, str(message)], headers)


class JsonHttpRequestHandler(HttpRequestHandler):
    """nameko's HTTP entrypoint, with ``"*"`` for all methods and JSON errors."""

    def get_url_rule(self):
        methods = None if self.method.strip() == "*" else self.method.split(",")
        # No merging of "//": werkzeug would answer that with an HTML redirect.
        return Rule(self.url, methods=methods, merge_slashes=False)

    def response_from_exception(self, exc):
        # Only reached when a handler lets an exception out (a bug, or a bad
        # signature); the message never carries a traceback.
        if isinstance(exc, self.expected_exceptions) or isinstance(exc, BadRequest):
            return error_response(400, f"bad request: {exc}")
        log.error("unhandled error in %s: %r", self.method_name, exc)
        return error_response(500, f"internal error: {type(exc).__name__}")


http = JsonHttpRequestHandler.decorator
