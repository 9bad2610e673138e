"""Requests carry their expiry and their correlation id; an agent drops an expired one."""

import time
from types import SimpleNamespace

import pytest

from services.agent.expiry import drop_expired
from services.common.errors import MirrorError
from services.common.expiry import DEADLINE_KEY, expired
from services.common.nameko_ext import (
    CORRELATION_KEY,
    CorrelatedRpc,
    ExpiringMethodProxy,
)


def test_a_deadline_passes_once_its_second_is_behind():
    assert expired(100.0, now=100.5)
    assert not expired(100.0, now=99.5)
    assert not expired(None) and not expired("not a number")
    assert expired(str(time.time() - 1))


def test_an_agent_drops_an_expired_request_with_the_message_of_the_protocol():
    with pytest.raises(MirrorError) as dropped:
        drop_expired(time.time() - 1, 3)
    assert str(dropped.value) == "request expired before resource machine 3 took it"
    drop_expired(time.time() + 30, 3)
    drop_expired(None, 3)


def worker_ctx(data=None):
    config = {"AMQP_URI": "memory://", "rpc_exchange": "x"}
    container = SimpleNamespace(config=config)
    return SimpleNamespace(container=container, context_data=dict(data or {}))


def test_an_expiring_request_has_a_broker_expiration_and_a_deadline_in_its_headers():
    ctx = worker_ctx({"mirror_user": "ann"})
    before = time.time()
    proxy = ExpiringMethodProxy(ctx, "jobdelete_2", "do", None, 5, DEADLINE_KEY)
    headers = proxy.get_message_headers(ctx)
    assert headers["nameko.mirror_user"] == "ann"
    assert before + 5 <= headers[f"nameko.{DEADLINE_KEY}"] <= time.time() + 5
    assert proxy.publisher.expiration == 5


def test_a_request_without_timeout_never_expires():
    ctx = worker_ctx()
    proxy = ExpiringMethodProxy(ctx, "job", "query", None, None, DEADLINE_KEY)
    assert f"nameko.{DEADLINE_KEY}" not in proxy.get_message_headers(ctx)
    assert proxy.publisher.expiration is None


def test_a_worker_learns_its_own_request_correlation_id():
    entrypoint = CorrelatedRpc()
    message = SimpleNamespace(
        headers={"nameko.mirror_user": "ann", f"nameko.{CORRELATION_KEY}": "forged"},
        properties={"correlation_id": "c-42"},
    )
    data = entrypoint.unpack_message_headers(message)
    assert data == {"mirror_user": "ann", CORRELATION_KEY: "c-42"}
    message.properties = {}
    assert CORRELATION_KEY not in entrypoint.unpack_message_headers(message)
