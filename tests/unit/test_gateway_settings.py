"""The ``GATEWAY`` section: the bind-address rule and the nameko config it gives."""

import pytest

from gateway import check_bind, gateway_config
from gateway.settings import OR_USERS


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:8000", "127.5.0.1:80", "localhost:8000", "LOCALHOST:1", "[::1]:8000"],
)
def test_check_bind_loopback_needs_no_token(address):
    check_bind({"GATEWAY": {"address": address, "tokens": []}})


STRONG = "3f9c2a71d08e4b6f"
FIX = (
    "GATEWAY.tokens (env GATEWAY_TOKEN with config/docker.yaml): set a secret of 16 characters or more, "
    "e.g. from `openssl rand -hex 32`"
)


@pytest.mark.parametrize("address", ["0.0.0.0:8000", "10.1.2.3:8000", "example.org:80", "8000"])
def test_check_bind_beyond_loopback_needs_tokens(address):
    with pytest.raises(ValueError) as info:
        check_bind({"GATEWAY": {"address": address, "tokens": []}})
    assert str(info.value) == f"gateway bound to {address} needs {FIX}{OR_USERS}"
    check_bind({"GATEWAY": {"address": address, "tokens": [STRONG]}})


@pytest.mark.parametrize("tokens", [[""], "", " , ", None])
def test_check_bind_counts_empty_tokens_as_none(tokens):
    with pytest.raises(ValueError) as info:
        check_bind({"GATEWAY": {"address": "0.0.0.0:8000", "tokens": tokens}})
    assert str(info.value) == f"gateway bound to 0.0.0.0:8000 needs {FIX}{OR_USERS}"


@pytest.mark.parametrize(
    "tokens, numbers",
    [
        (["change-me-insecure-default-token"], "1 of 1"),
        (["CHANGE-ME"], "1 of 1"),
        ([STRONG, "t"], "2 of 2"),
        # Fifteen characters: one short of the minimum.
        (["0123456789abcde", STRONG, "changeme"], "1, 3 of 3"),
        (f"{STRONG},password", "2 of 2"),
    ],
)
def test_check_bind_beyond_loopback_refuses_placeholder_and_short_tokens(tokens, numbers):
    with pytest.raises(ValueError) as info:
        check_bind({"GATEWAY": {"address": "0.0.0.0:8000", "tokens": tokens}})
    message = str(info.value)
    assert message == (
        f"gateway bound to 0.0.0.0:8000 refuses a placeholder or short token "
        f"(number {numbers}) in {FIX}"
    )
    assert "\n" not in message
    # Loopback keeps accepting anything: the demo and the tests run on it.
    check_bind({"GATEWAY": {"address": "127.0.0.1:8000", "tokens": tokens}})


def test_check_bind_accepts_sixteen_characters_and_never_quotes_a_token():
    check_bind({"GATEWAY": {"address": "[::]:8000", "tokens": ["0123456789abcdef"]}})
    with pytest.raises(ValueError) as info:
        check_bind({"GATEWAY": {"address": "[::]:8000", "tokens": ["short-secret"]}})
    assert "short-secret" not in str(info.value)


def test_gateway_config_sets_web_server_address():
    config = {"AMQP_URI": "amqp://x", "GATEWAY": {"address": "127.0.0.1:8123", "tokens": []}}
    out = gateway_config(config)
    assert out["WEB_SERVER_ADDRESS"] == "127.0.0.1:8123"
    assert out["AMQP_URI"] == "amqp://x"
    assert "WEB_SERVER_ADDRESS" not in config
    with pytest.raises(ValueError, match="needs GATEWAY.tokens"):
        gateway_config({"GATEWAY": {"address": "0.0.0.0:8000", "tokens": []}})
    with pytest.raises(ValueError, match="refuses a placeholder or short token"):
        gateway_config({"GATEWAY": {"address": "0.0.0.0:8000", "tokens": ["change-me"]}})
