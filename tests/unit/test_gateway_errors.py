"""The gateway's one table of HTTP codes, and how call failures and central's answers reach it."""

import pytest
from kombu.exceptions import OperationalError
from nameko.exceptions import (
    IncorrectSignature,
    MalformedRequest,
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
)

from gateway import errors
from gateway.errors import (
    REST_CALL_ERRORS,
    STATUS,
    BadCall,
    GatewayError,
    JobNotFound,
    JobNotRunning,
    MethodNotAllowed,
    NoAnswer,
    NotFound,
    Refused,
    ServiceFailed,
    Unauthorized,
    Unavailable,
    call_error,
    central_error,
)


def test_every_error_type_has_its_code_in_the_table():
    types = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, GatewayError)
    ]
    assert set(types) == set(STATUS)
    for cls in types:
        if cls is not MethodNotAllowed:
            assert cls("m").status == STATUS[cls]


def test_a_subclass_takes_its_parents_code():
    class Later(NotFound):
        pass

    assert Later("m").status == 404


def test_headers_travel_with_the_error():
    assert Unauthorized("no").headers == {"WWW-Authenticate": "Bearer"}
    refused = MethodNotAllowed("GET", "/jobs/submit", "POST")
    assert (refused.status, refused.message) == (405, "method GET not allowed on /jobs/submit")
    assert refused.headers == {"Allow": "POST"}
    assert Refused("m").headers is None


@pytest.mark.parametrize(
    ("exc", "error", "message"),
    [
        (UnknownService("s"), NotFound, "unknown service: echo"),
        (MethodNotFound("m"), NotFound, "service echo has no method add"),
        (IncorrectSignature("bad"), BadCall, "bad arguments for echo.add: bad"),
        (MalformedRequest("odd"), BadCall, "malformed request for echo.add: odd"),
        (RpcTimeout("x"), NoAnswer, "echo.add did not answer within 1.5 s"),
        (RemoteError("ValueError", "kaboom"), ServiceFailed, "echo.add failed: ValueError: kaboom"),
        (OperationalError("down"), Unavailable, "message broker unavailable: down"),
        (ConnectionRefusedError("refused"), Unavailable, "message broker unavailable: refused"),
        (KeyError("k"), ServiceFailed, "echo.add failed: KeyError: 'k'"),
    ],
)
def test_call_errors(exc, error, message):
    found = call_error(exc, "echo", "add", 1.5)
    assert type(found) is error and found.message == message


def test_long_call_errors_are_cut():
    found = call_error(RemoteError("E", "x" * 2000), "echo", "add", 1)
    assert len(found.message) == 500 and found.message.endswith("...")


def test_a_missing_central_service_is_503_for_rest():
    found = call_error(UnknownService("job"), "job", "query", 1, REST_CALL_ERRORS)
    assert (found.status, found.message) == (503, "the job service is not running")
    assert type(call_error(RpcTimeout("x"), "job", "query", 1, REST_CALL_ERRORS)) is NoAnswer


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("job is not existed , job : 9", JobNotFound),
        ("job not running , jobid : 9", JobNotRunning),
        ("internal error: KeyError: 'x'", ServiceFailed),
        ("ncpus must be a positive integer, got 0", Refused),
    ],
)
def test_central_errors(message, error):
    found = central_error(message)
    assert type(found) is error and found.message == message


def test_an_unmatched_central_error_takes_the_callers_type():
    assert type(central_error("agent said no", ServiceFailed)) is ServiceFailed
    assert type(central_error("job is not existed , job : 1", ServiceFailed)) is JobNotFound
    assert central_error(["odd"]).message == "['odd']"
