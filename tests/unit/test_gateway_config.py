"""The gateway's settings: binding beyond loopback needs tokens, WEB_SERVER_ADDRESS is derived."""

import pytest

from gateway import check_bind, gateway_config


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:8000", "127.5.0.1:80", "localhost:8000", "LOCALHOST:1", "[::1]:8000"],
)
def test_check_bind_loopback_needs_no_token(address):
    check_bind({"GATEWAY": {"address": address, "tokens": []}})


@pytest.mark.parametrize("address", ["0.0.0.0:8000", "10.1.2.3:8000", "example.org:80", "8000"])
def test_check_bind_beyond_loopback_needs_tokens(address):
    with pytest.raises(ValueError) as info:
        check_bind({"GATEWAY": {"address": address, "tokens": []}})
    assert str(info.value) == f"gateway bound to {address} needs GATEWAY.tokens"
    check_bind({"GATEWAY": {"address": address, "tokens": ["t"]}})


def test_gateway_config_sets_web_server_address():
    config = {"AMQP_URI": "amqp://x", "GATEWAY": {"address": "127.0.0.1:8123", "tokens": []}}
    out = gateway_config(config)
    assert out["WEB_SERVER_ADDRESS"] == "127.0.0.1:8123"
    assert out["AMQP_URI"] == "amqp://x"
    assert "WEB_SERVER_ADDRESS" not in config
    with pytest.raises(ValueError, match="needs GATEWAY.tokens"):
        gateway_config({"GATEWAY": {"address": "0.0.0.0:8000", "tokens": []}})
