"""The HTTP gateway against the real broker, over real HTTP (SPEC 8 and 11).

Two gateways share one private exchange with a fake ``echo_7`` service:
``open_url`` (no tokens, everything exposed, 1 KiB body cap, 1 s timeout) and
``locked_url`` (tokens, only ``echo*`` exposed).

A query value of digits with a leading zero (``d=05``) is passed as the int 5:
SPEC 8 says "made only of digits", with no exception for leading zeros.
"""

import json
import logging
import socket
import time
import uuid

import eventlet
import pytest
import requests
from nameko.rpc import rpc
from nameko.runners import ServiceRunner

from gateway import GatewayService

TOKEN = "s3cret-token"
TIMEOUT = 1
MAX_BODY = 1024


class EchoService:
    name = "echo_7"

    @rpc
    def hello(self, **kwargs):
        return [0, kwargs]

    @rpc
    def add(self, a, b):
        return [0, a + b]

    @rpc
    def slow(self, seconds=TIMEOUT + 1):
        eventlet.sleep(seconds)
        return [0, "late"]

    @rpc
    def boom(self):
        raise ValueError("kaboom")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(runner):
    try:
        with eventlet.Timeout(10):
            runner.stop()
    except eventlet.Timeout:
        runner.kill()


@pytest.fixture(scope="module")
def gateways(amqp_uri):
    """``{"open": url, "locked": url}``: two gateways and ``echo_7`` in this process."""
    exchange = f"gateway_test_{uuid.uuid4().hex[:8]}"
    runners, urls = [], {}

    def start(key, gateway, *services):
        port = _free_port()
        config = {
            "AMQP_URI": amqp_uri,
            "rpc_exchange": exchange,
            "GATEWAY": {"address": f"127.0.0.1:{port}", **gateway},
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
        }
        runner = ServiceRunner(config)
        for cls in services:
            runner.add_service(cls)
        runners.append(runner)
        runner.start()
        urls[key] = f"http://127.0.0.1:{port}"

    try:
        open_gateway = {"tokens": [], "expose": ["*"], "max_body": MAX_BODY, "timeout": TIMEOUT}
        start("open", open_gateway, EchoService, GatewayService)
        locked_gateway = {"tokens": ["other", TOKEN], "expose": ["echo*", "project"]}
        start("locked", locked_gateway, GatewayService)
        yield urls
    finally:
        # nameko's stop takes ~2 s per runner (consumer polling): stop them together.
        pool = eventlet.GreenPool()
        for runner in runners:
            pool.spawn(_stop, runner)
        pool.waitall()


@pytest.fixture
def open_url(gateways):
    return gateways["open"]


@pytest.fixture
def locked_url(gateways):
    return gateways["locked"]


def assert_error(response, status, fragment):
    """Every error: the status, a JSON ``[-1, str]`` body, no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 2, body
    assert body[0] == -1
    assert isinstance(body[1], str)
    assert fragment in body[1], body


def assert_ok(response):
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


# -- success -----------------------------------------------------------------


def test_get_passes_query_and_coerces_ints(open_url):
    query = "a=5&b=-3&c=x5&d=05&e=&f=-&g=1.5&h=-0"
    body = assert_ok(requests.get(f"{open_url}/proxy/echo_7-hello?{query}", timeout=10))
    assert body == [0, {"a": 5, "b": -3, "c": "x5", "d": 5, "e": "", "f": "-", "g": "1.5", "h": 0}]


def test_get_without_arguments(open_url):
    assert assert_ok(requests.get(f"{open_url}/proxy/echo_7-hello", timeout=10)) == [0, {}]


def test_post_json_object_is_kwargs_and_wins_over_query(open_url):
    response = requests.post(
        f"{open_url}/proxy/echo_7-hello?a=1&z=2",
        json={"a": "5", "n": [1, 2], "q": {"x": None}},
        timeout=10,
    )
    assert assert_ok(response) == [0, {"a": "5", "z": 2, "n": [1, 2], "q": {"x": None}}]


def test_post_empty_body_uses_query_only(open_url):
    response = requests.post(f"{open_url}/proxy/echo_7-add?a=2&b=3", timeout=10)
    assert assert_ok(response) == [0, 5]


def test_post_chunked_body(open_url):
    chunks = iter([b'{"a": ', b'"chunk', b'ed"}'])
    response = requests.post(f"{open_url}/proxy/echo_7-hello", data=chunks, timeout=10)
    assert assert_ok(response) == [0, {"a": "chunked"}]


def test_requests_are_logged(open_url, caplog):
    with caplog.at_level(logging.INFO, logger="gateway"):
        assert_ok(requests.get(f"{open_url}/proxy/echo_7-hello?a=1", timeout=10))
        requests.get(f"{open_url}/proxy/echo_7-nope", timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("gateway")]
    assert any(line.startswith("GET echo_7-hello -> 200") for line in lines), lines
    assert any(line.startswith("GET echo_7-nope -> 404") for line in lines), lines


# -- 404 / 405 ---------------------------------------------------------------


def test_unknown_service_is_404(open_url):
    response = requests.get(f"{open_url}/proxy/nosuch-list", timeout=10)
    assert_error(response, 404, "unknown service: nosuch")


def test_unknown_method_is_404(open_url):
    response = requests.get(f"{open_url}/proxy/echo_7-nope", timeout=10)
    assert_error(response, 404, "service echo_7 has no method nope")


@pytest.mark.parametrize(
    "path, shown",
    [
        ("/nothing/here", "/nothing/here"),
        ("/static", "/static"),
        ("/proxyx", "/proxyx"),
        ("//x", "/x"),
    ],
)
def test_unknown_path_is_json_404(open_url, path, shown):
    response = requests.get(f"{open_url}{path}", timeout=10)
    assert_error(response, 404, f"no route: {shown}")


def test_other_method_on_proxy_is_json_405(open_url):
    response = requests.put(f"{open_url}/proxy/echo_7-hello", timeout=10)
    assert_error(response, 405, "method PUT not allowed")


# -- 400 -----------------------------------------------------------------------


def test_bad_kwargs_is_400(open_url):
    response = requests.get(f"{open_url}/proxy/echo_7-add?a=1&c=2", timeout=10)
    assert_error(response, 400, "bad arguments for echo_7.add: ")


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"{not json", "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object"),
        (b'"text"', "request body must be a JSON object"),
        (b"\xff\xfe", "request body is not valid JSON"),
    ],
)
def test_bad_json_body_is_400(open_url, data, fragment):
    response = requests.post(f"{open_url}/proxy/echo_7-hello", data=data, timeout=10)
    assert_error(response, 400, fragment)


@pytest.mark.parametrize(
    "target", ["echo_7hello", "echo_7-", "-hello", "echo_7-hello-x", "echo.7-hello", "a/b-c", ""]
)
def test_malformed_target_is_400(open_url, target):
    response = requests.get(f"{open_url}/proxy/{target}", timeout=10)
    assert_error(response, 400, "malformed target")


# -- 401 / 403 ---------------------------------------------------------------


def test_service_not_exposed_is_403(locked_url):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = requests.get(f"{locked_url}/proxy/machine-list", headers=headers, timeout=10)
    assert_error(response, 403, "service machine is not exposed")
    # Refused before any call: an existing service that is not exposed is 403 too.
    response = requests.get(f"{locked_url}/proxy/xecho_7-hello", headers=headers, timeout=10)
    assert_error(response, 403, "service xecho_7 is not exposed")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
def test_missing_or_wrong_token_is_401(locked_url, headers):
    response = requests.get(f"{locked_url}/proxy/echo_7-hello", headers=headers, timeout=10)
    assert_error(response, 401, "missing or wrong bearer token")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_right_token_is_200(locked_url):
    for token in (TOKEN, "other"):
        headers = {"Authorization": f"Bearer {token}"}
        response = requests.get(f"{locked_url}/proxy/echo_7-hello?x=1", headers=headers, timeout=10)
        assert assert_ok(response) == [0, {"x": 1}]


# -- 413 / 504 / 500 ---------------------------------------------------------


def test_oversize_body_is_413(open_url):
    data = json.dumps({"pad": "x" * (MAX_BODY * 4)}).encode()
    response = requests.post(f"{open_url}/proxy/echo_7-hello", data=data, timeout=10)
    assert_error(response, 413, f"larger than {MAX_BODY} bytes")


def test_oversize_chunked_body_is_413(open_url):
    chunks = iter([b'{"pad": "', b"x" * MAX_BODY, b'"}'])
    response = requests.post(f"{open_url}/proxy/echo_7-hello", data=chunks, timeout=10)
    assert_error(response, 413, f"larger than {MAX_BODY} bytes")


def test_body_at_the_cap_is_accepted(open_url):
    data = json.dumps({"pad": ""}).encode()
    data = data.replace(b'""', b'"' + b"x" * (MAX_BODY - len(data)) + b'"')
    assert len(data) == MAX_BODY
    response = requests.post(f"{open_url}/proxy/echo_7-hello", data=data, timeout=10)
    assert assert_ok(response)[0] == 0


def test_timeout_is_504(open_url):
    started = time.monotonic()
    response = requests.get(f"{open_url}/proxy/echo_7-slow", timeout=10)
    assert_error(response, 504, f"echo_7.slow did not answer within {TIMEOUT} s")
    assert time.monotonic() - started < TIMEOUT + 0.9


def test_remote_exception_is_500(open_url):
    response = requests.get(f"{open_url}/proxy/echo_7-boom", timeout=10)
    assert_error(response, 500, "echo_7.boom failed: ValueError: kaboom")


# -- refusal at start ---------------------------------------------------------


def test_service_refuses_to_start_beyond_loopback_without_tokens(amqp_uri):
    port = _free_port()
    config = {
        "AMQP_URI": amqp_uri,
        "rpc_exchange": f"gateway_test_{uuid.uuid4().hex[:8]}",
        "GATEWAY": {"address": f"0.0.0.0:{port}", "tokens": []},
        "WEB_SERVER_ADDRESS": f"0.0.0.0:{port}",
    }
    runner = ServiceRunner(config)
    runner.add_service(GatewayService)
    try:
        with pytest.raises(
            ValueError, match=f"gateway bound to 0.0.0.0:{port} needs GATEWAY.tokens"
        ):
            runner.start()
    finally:
        runner.kill()
