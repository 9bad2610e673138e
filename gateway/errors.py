"""Every answer other than 200: the gateway's error types and the one table of their HTTP codes.

A route raises a :class:`GatewayError` subclass; :data:`STATUS` alone decides its
HTTP code. What comes back from the mesh is turned into these types in two
tables here: :data:`CALL_ERRORS` for what a call raises (nameko and kombu
exceptions) and :data:`CENTRAL_ERRORS` for the ``[-1, "message"]`` answers of
central's services.
"""

from kombu.exceptions import OperationalError
from nameko.exceptions import (
    IncorrectSignature,
    MalformedRequest,
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
)

_MAX_MESSAGE = 500


class GatewayError(Exception):
    """An answer other than 200: its type gives the HTTP code, ``message`` the text."""

    headers = None

    def __init__(self, message, headers=None):
        super().__init__(message)
        self.message = message
        if headers is not None:
            self.headers = headers

    @property
    def status(self):
        return status_of(self)


class BadRequest(GatewayError):
    """The request itself is malformed: its body, target, job id or a job field."""


class BadCall(GatewayError):
    """The called method refuses the arguments (nameko's signature or request checks)."""


class Refused(GatewayError):
    """Central answered ``[-1, message]`` with an error no row of CENTRAL_ERRORS names."""


class JobNotRunning(GatewayError):
    """Central refuses to cancel a job that has already ended."""


class Unauthorized(GatewayError):
    """Tokens are configured and the request carries none of them."""

    headers = {"WWW-Authenticate": "Bearer"}


class NotExposed(GatewayError):
    """``/proxy`` names a service outside ``GATEWAY.expose``."""


class NotFound(GatewayError):
    """No route, or ``/proxy`` names a service or method that does not exist."""


class JobNotFound(GatewayError):
    """No job has the requested id."""


class MethodNotAllowed(GatewayError):
    """The route exists but does not serve the request's method."""

    def __init__(self, method, path, allow):
        super().__init__(f"method {method} not allowed on {path}", {"Allow": allow})


class BodyTooLarge(GatewayError):
    """The body is larger than ``GATEWAY.max_body``."""


class ServiceFailed(GatewayError):
    """A called service failed unexpectedly."""


class InternalError(GatewayError):
    """The gateway itself failed: a bug, answered as JSON all the same."""


class Unavailable(GatewayError):
    """The broker is unreachable, or the central service a REST route needs is not running."""


class NoAnswer(GatewayError):
    """A called service did not answer within ``GATEWAY.timeout``."""


#: The HTTP code of each error type (a subclass not listed takes its parent's).
STATUS = {
    GatewayError: 500,
    BadRequest: 400,
    BadCall: 400,
    Refused: 400,
    JobNotRunning: 400,
    Unauthorized: 401,
    NotExposed: 403,
    NotFound: 404,
    JobNotFound: 404,
    MethodNotAllowed: 405,
    BodyTooLarge: 413,
    ServiceFailed: 500,
    InternalError: 500,
    Unavailable: 503,
    NoAnswer: 504,
}


def status_of(exc):
    """The HTTP code of ``exc`` from :data:`STATUS`."""
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


def short(text):
    """``text`` cut to a length that keeps an error answer readable."""
    text = str(text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


# -- what a call raises -> an error type and its message ----------------------------------

#: ``(exception types, error type, message, cut)`` in order, the first match wins; the
#: message is formatted with ``exc``, ``name`` (its type's), ``service``, ``method``,
#: ``where`` and ``seconds``. Rows that carry the exception's own text, which has no
#: bound, have ``cut`` set: their message is shortened by :func:`short`.
CALL_ERRORS = (
    (UnknownService, NotFound, "unknown service: {service}", False),
    (MethodNotFound, NotFound, "service {service} has no method {method}", False),
    (IncorrectSignature, BadCall, "bad arguments for {where}: {exc}", True),
    (MalformedRequest, BadCall, "malformed request for {where}: {exc}", True),
    (RpcTimeout, NoAnswer, "{where} did not answer within {seconds} s", False),
    (RemoteError, ServiceFailed, "{where} failed: {exc.exc_type}: {exc.value}", True),
    ((OperationalError, OSError), Unavailable, "message broker unavailable: {exc}", True),
    (Exception, ServiceFailed, "{where} failed: {name}: {exc}", True),
)

#: REST routes call services the gateway itself names: when one is missing, Mirror
#: is down (503), not the client mistaken as with a service named in ``/proxy`` (404).
REST_CALL_ERRORS = (
    (UnknownService, Unavailable, "the {service} service is not running", False),
    *CALL_ERRORS,
)


def call_error(exc, service, method, timeout, table=CALL_ERRORS):
    """The :class:`GatewayError` for what calling ``service.method`` raised."""
    error, template, cut = next(row[1:] for row in table if isinstance(exc, row[0]))
    message = template.format(
        exc=exc,
        name=type(exc).__name__,
        service=service,
        method=method,
        where=f"{service}.{method}",
        seconds=f"{timeout:g}",
    )
    return error(short(message) if cut else message)


# -- what central answers -> an error type -------------------------------------------------

#: Central's expected errors are plain ``[-1, "message"]`` strings, so the start of the
#: message is what tells them apart. The only ones a REST client sees differently:
#:
#: - ``job is not existed`` (``services.common.errors.job_missing``): 404.
#: - ``job not running`` (``job.cancel`` of a job already ended): the cancel route
#:   answers success, as the seeds' idempotent cancel does.
#: - ``internal error`` (``services.common.rpc.envelope`` of an unexpected exception): 500.
#:
#: Any other message is the ``unmatched`` type of the call (:func:`central_error`).
CENTRAL_ERRORS = (
    ("job is not existed", JobNotFound),
    ("job not running", JobNotRunning),
    ("internal error", ServiceFailed),
)


def central_error(message, unmatched=Refused):
    """The :class:`GatewayError` for central's ``[-1, message]`` answer."""
    message = str(message)
    error = next((t for prefix, t in CENTRAL_ERRORS if message.startswith(prefix)), unmatched)
    return error(message)
