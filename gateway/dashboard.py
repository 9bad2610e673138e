"""The web dashboard and the described API: ``/``, ``/static/<path>``, ``/openapi.json``, ``/docs``.

Every answer is a file shipped in the package under ``gateway/static`` (plain
HTML, JS and CSS, no build step) or ``gateway/openapi.json``. None of them
needs a caller: they hold no data of the mesh, and the pages send the
caller's token on every call they make to the routes that do.
"""

import json
import logging
import mimetypes
import time
from functools import cache
from pathlib import Path

from werkzeug.wrappers import Response

from .errors import MethodNotAllowed, NotFound
from .web import json_response, proxy_error

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
OPENAPI = Path(__file__).resolve().parent / "openapi.json"

# The page may load only what the package ships: no CDN, no inline script.
POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
)
READ_METHODS = ("GET", "HEAD")


def static_file(relative):
    """The file ``relative`` under :data:`STATIC`, or None when it is not one of them."""
    if not relative or "\\" in relative or "\0" in relative:
        return None
    path = (STATIC / relative).resolve()
    # Nothing outside the static folder, whatever dots or links the path holds.
    if not path.is_relative_to(STATIC) or not path.is_file():
        return None
    return path


def file_response(path, request, cache_seconds=0):
    """``path``'s bytes with its type, no body for HEAD."""
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if mimetype.startswith("text/") or mimetype.endswith(("javascript", "json")):
        mimetype += "; charset=utf-8"
    data = b"" if request.method == "HEAD" else path.read_bytes()
    headers = {
        "Content-Security-Policy": POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": f"max-age={cache_seconds}" if cache_seconds else "no-cache",
    }
    response = Response(data, status=200, content_type=mimetype, headers=headers)
    if request.method == "HEAD":
        response.content_length = path.stat().st_size
    return response


def serve_file(request, path, cache_seconds=0):
    """A file of the package, or a JSON 404/405 in the ``/proxy`` shape (as every no-route)."""
    started = time.monotonic()
    if request.method not in READ_METHODS:
        error = MethodNotAllowed(request.method, request.path, ", ".join(READ_METHODS))
    elif path is None:
        error = NotFound(f"no route: {request.path}")
    else:
        log.debug("%s %s -> 200", request.method, request.path)
        return file_response(path, request, cache_seconds)
    log.info(
        "%s %s -> %d (%.1f ms): %s",
        request.method,
        request.path,
        error.status,
        (time.monotonic() - started) * 1000,
        error.message,
    )
    return proxy_error(error)


def handle_index(request):
    """``/``: the dashboard page."""
    return serve_file(request, static_file("index.html"))


def handle_static(request, relative):
    """``/static/<path>``: the dashboard's scripts, styles and the vendored chart library."""
    # The vendored library changes only with the package: browsers may keep it.
    keep = 3600 if relative.startswith("vendor/") else 0
    return serve_file(request, static_file(relative), keep)


def handle_docs(request):
    """``/docs``: the page that renders ``/openapi.json`` and tries its calls."""
    return serve_file(request, static_file("docs.html"))


@cache
def openapi_document():
    """The OpenAPI 3.1 document of the gateway, read once from the package."""
    return json.loads(OPENAPI.read_text(encoding="utf-8"))


def handle_openapi(request):
    """``/openapi.json``: the gateway's routes, their requests and answers."""
    if request.method not in READ_METHODS:
        return serve_file(request, None)
    return json_response(200, openapi_document(), {"Access-Control-Allow-Origin": "*"})
