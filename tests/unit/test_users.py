"""The pure parts of users: tokens, passwords, names, callers, the RPC surface, the gateway's door."""

from types import SimpleNamespace

import pytest

from gateway.auth import Authenticator, Door, bearer
from gateway.errors import Unauthorized
from gateway.settings import GatewaySettings, check_bind, read_settings
from services.central.credentials import (
    check_password,
    check_user_name,
    hash_password,
    new_token,
)
from services.central.providers import Caller
from services.central.storage.transitions import check_owner
from services.common.errors import MirrorError
from services.common.identity import (
    ADMIN_KEY,
    LOCAL,
    TOKEN_ADMIN,
    USER_KEY,
    Identity,
    context_of,
    identity_of,
    token_digest,
)
from services.common.surface import USER_SERVICES, is_internal, is_machine_service

# -- tokens, passwords, names ---------------------------------------------------------------


def test_tokens_are_long_random_and_stored_as_sha256():
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    token = tokens.pop()
    assert token.startswith("mirror_") and len(token) >= 40
    digest = token_digest(token)
    assert len(digest) == 64 and token not in digest
    assert digest == token_digest(token) != token_digest(token + "x")


def test_passwords_are_salted_scrypt_hashes():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$") and "correct" not in first
    assert check_password("correct horse", first) and check_password("correct horse", second)
    assert not check_password("correct horsE", first)
    for stored in (None, "", "md5$x", "scrypt$1$2$3$!!$!!", first.replace("scrypt", "bcrypt")):
        assert not check_password("correct horse", stored)


def test_an_unknown_user_costs_the_same_scrypt_work(monkeypatch):
    """Timing must not tell a missing user from a wrong password: both run scrypt once."""
    from services.central import credentials

    stored = hash_password("correct horse")
    calls = []
    real = credentials._scrypt
    monkeypatch.setattr(credentials, "_scrypt", lambda *args: calls.append(args[2:]) or real(*args))
    assert not check_password("guess", stored) and not check_password("guess", None)
    assert len(calls) == 2 and calls[0] == calls[1]


@pytest.mark.parametrize("password", ["short", "", "x" * 1025, None, 12345678])
def test_bad_passwords_are_refused(password):
    with pytest.raises(MirrorError):
        hash_password(password)


@pytest.mark.parametrize("name", ["ann", "Ann.Lee", "a-b_c", "x@lab", "7", "n" * 64])
def test_good_user_names(name):
    assert check_user_name(name) == name


@pytest.mark.parametrize(
    "name", ["", " ann", "ann bob", "-ann", "n" * 65, "a/b", None, 3, "local", "ADMIN"]
)
def test_bad_or_reserved_user_names(name):
    with pytest.raises(MirrorError):
        check_user_name(name)


# -- who calls ------------------------------------------------------------------------------


def test_identity_from_context_data():
    assert identity_of({}) == identity_of(None) == LOCAL
    assert identity_of({USER_KEY: "ann"}) == Identity("ann", False)
    assert identity_of({USER_KEY: "root", ADMIN_KEY: True}) == Identity("root", True)
    assert identity_of(context_of(Identity("bob", False))) == Identity("bob", False)
    assert Identity("bob", False).scope == "bob" and LOCAL.scope is None


def test_caller_provider_reads_the_workers_context_data():
    provider = Caller()
    assert provider.get_dependency(SimpleNamespace(data={})) == LOCAL
    worker = SimpleNamespace(data={USER_KEY: "ann", ADMIN_KEY: False})
    assert provider.get_dependency(worker) == Identity("ann", False)


# -- the surface ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "service, method",
    [
        ("job", "report"),
        ("job", "claim"),
        ("job", "batch"),
        ("job", "fetch"),
        ("job", "remove"),
        ("job", "owned"),
        ("machine", "heartbeat"),
        ("jobagent_1", "logs"),
        ("jobagent_12", "status"),
        ("user", "add"),
        ("user", "authenticate"),
        ("user", "login"),
    ],
)
def test_internal_calls(service, method):
    assert is_internal(service, method)


@pytest.mark.parametrize(
    "service, method",
    [
        ("job", "query"),
        ("job", "cancel"),
        ("job", "list"),
        ("machine", "list"),
        ("jobrun_1", "do"),
        ("user", "whoami"),
        ("project", "new"),
        ("jobagent", "logs"),
    ],
)
def test_user_calls(service, method):
    assert not is_internal(service, method)


def test_machine_services_and_the_default_exposure():
    assert is_machine_service("jobrun_5") and is_machine_service("jobdelete_12")
    for name in ("jobrun", "jobrun_x", "jobagent_1", "job", "xjobrun_1", "jobrun_1x"):
        assert not is_machine_service(name)
    assert "jobagent_*" not in USER_SERVICES and "jobkill_*" in USER_SERVICES
    assert read_settings({}).expose == USER_SERVICES
    assert read_settings({"GATEWAY": {"expose": ["*"]}}).expose == ("*",)


def test_a_machine_reports_only_on_jobs_placed_on_it():
    check_owner({"id": 3, "rid": 1}, 1)
    check_owner({"id": 3, "rid": None}, None)  # central itself
    with pytest.raises(MirrorError, match="^job 3 belongs to resource machine 1, not 2$"):
        check_owner({"id": 3, "rid": 1}, 2)
    with pytest.raises(MirrorError, match="^job 3 is waiting for a resource machine, not 2$"):
        check_owner({"id": 3, "rid": None}, 2)


# -- the gateway's door -----------------------------------------------------------------------


class FakeCentral:
    """``user.authenticate`` answering from ``users`` (token -> (name, admin)), counting calls."""

    def __init__(self, users=None, down=False):
        self.users = users or {}
        self.down = down
        self.calls = 0

    def call(self, service, method, kwargs, timeout):
        assert (service, method) == ("user", "authenticate")
        self.calls += 1
        if self.down:
            raise OSError("no broker")
        found = self.users.get(kwargs["token"])
        user = {"name": found[0], "admin": found[1]} if found else None
        return [0, {"user": user, "users": bool(self.users)}]


def door(address="127.0.0.1:1", tokens=(), users=False, cache=10.0, clock=None):
    settings = GatewaySettings(address, tokens, ("*",), 1024, 1.0, users, cache)
    if clock is None:
        return Authenticator(settings, address)
    return Authenticator(settings, address, clock=clock)


def test_bearer_header():
    assert bearer("Bearer abc") == "abc" == bearer("  bearer   abc ")
    for header in (None, "", "Bearer ", "Basic abc", "abc"):
        assert bearer(header) is None


def test_open_loopback_acts_as_local_until_a_user_exists():
    central = FakeCentral()
    auth = door()
    assert auth.identify(None, central) == LOCAL
    assert auth.identify("Bearer anything", central) == LOCAL
    central.users = {"t1": ("ann", False)}
    auth = door()
    assert auth.identify("Bearer t1", central) == Identity("ann", False)
    for header in (None, "Bearer nope"):
        with pytest.raises(Unauthorized, match="missing or wrong bearer token"):
            auth.identify(header, central)


def test_static_tokens_are_admins_without_asking_central():
    central = FakeCentral({"t1": ("ann", False)})
    auth = door(tokens=("s" * 20,))
    assert auth.identify(f"Bearer {'s' * 20}", central) == TOKEN_ADMIN
    assert central.calls == 0
    with pytest.raises(Unauthorized):
        auth.identify(None, central)
    assert central.calls == 0
    assert auth.identify("Bearer t1", central) == Identity("ann", False)


def test_beyond_loopback_or_with_users_there_is_no_open_mode():
    for auth in (door(address="0.0.0.0:1", users=True), door(users=True)):
        with pytest.raises(Unauthorized):
            auth.identify(None, FakeCentral())
        with pytest.raises(Unauthorized):
            auth.identify("Bearer x", FakeCentral(down=True))


def test_answers_are_cached_for_auth_cache_seconds():
    now = [0.0]
    central = FakeCentral({"t1": ("ann", False)})
    auth = door(cache=10, clock=lambda: now[0])
    for _ in range(3):
        assert auth.identify("Bearer t1", central).name == "ann"
    assert central.calls == 1
    del central.users["t1"]
    central.users["t2"] = ("bob", False)
    now[0] = 9.0
    assert auth.identify("Bearer t1", central).name == "ann"
    now[0] = 10.5
    with pytest.raises(Unauthorized):
        auth.identify("Bearer t1", central)
    assert central.calls == 2


def test_an_unreachable_central_keeps_only_the_open_mode_open():
    assert door().identify(None, FakeCentral(down=True)) == LOCAL
    with pytest.raises(Unauthorized):
        door(tokens=("s" * 20,)).identify("Bearer x", FakeCentral(down=True))


def test_the_door_names_the_caller_in_the_context_data_whatever_was_there():
    data = {USER_KEY: "forged", ADMIN_KEY: True, "other": 1}
    central = FakeCentral({"t1": ("ann", False)})
    identity = Door(door(), data).admit("Bearer t1", central)
    assert identity == Identity("ann", False)
    assert data == {USER_KEY: "ann", ADMIN_KEY: False, "other": 1}


def test_users_flag_lets_a_gateway_bind_beyond_loopback_without_tokens():
    check_bind({"GATEWAY": {"address": "0.0.0.0:8000", "tokens": [], "users": True}})
    check_bind({"GATEWAY": {"address": "0.0.0.0:8000", "tokens": [], "users": "true"}})
    with pytest.raises(ValueError, match="GATEWAY.users: true"):
        check_bind({"GATEWAY": {"address": "0.0.0.0:8000", "tokens": [], "users": "false"}})
