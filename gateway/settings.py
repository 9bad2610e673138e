"""The ``GATEWAY`` configuration section, read once, and the bind-address rule.

Keys read from ``GATEWAY`` (defaults from :mod:`services.config`):

``address``
    ``host:port`` the HTTP server binds (copied to nameko's
    ``WEB_SERVER_ADDRESS`` by :func:`gateway_config`).
``tokens``
    Bearer tokens; empty means no authentication. A string is split on commas
    and white space (handy with ``${GATEWAY_TOKENS:}`` substitution). Beyond
    loopback at least one is required, and none may be a placeholder or
    shorter than 16 characters (:mod:`services.common.exposure`).
``users``
    True when callers authenticate as users of central's ``user`` service
    (``mirror user add``): a gateway bound beyond loopback needs it or
    ``tokens``, and on loopback it turns off the open mode in which callers
    act as the admin ``local`` until the first user exists.
``auth_cache``
    Seconds an authentication answer of central is reused (default 10): a
    revoked token stops working within that time.
``expose``
    fnmatch patterns of the services callable through ``/proxy`` (default: the
    user services of :data:`services.common.surface.USER_SERVICES`); a call
    internal to the mesh is refused whatever they say.
``max_body``
    Largest request body accepted, in bytes.
``timeout``
    Seconds to wait for an RPC reply before answering 504.
``max_workers`` (optional, default 64)
    Concurrent requests in flight; copied to nameko's ``max_workers``.
"""

import copy
import re
from dataclasses import dataclass

from nameko.constants import WEB_SERVER_CONFIG_KEY as WEB_SERVER_ADDRESS

from services.common.exposure import (
    HOW_TO_GENERATE,
    MIN_TOKEN_LENGTH,
    is_loopback_host,
    is_weak_token,
)
from services.common.surface import USER_SERVICES
from services.config import DEFAULTS

DEFAULT_MAX_WORKERS = 64

# The other way past the token rule: callers authenticate as users.
OR_USERS = "; or set GATEWAY.users: true and add users with `mirror user add`"

_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class GatewaySettings:
    address: str
    tokens: tuple
    expose: tuple
    max_body: int
    timeout: float
    users: bool = False
    auth_cache: float = 10.0


def _names(value):
    """A list of non-empty strings from a YAML list, a string or nothing."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = _SPLIT.split(value)
    return tuple(str(item).strip() for item in value if str(item).strip())


def section(config):
    """The ``GATEWAY`` section of ``config`` with the defaults filled in."""
    out = dict(DEFAULTS["GATEWAY"])
    out.update(config.get("GATEWAY") or {})
    return out


def read_settings(config):
    """Parse and check the ``GATEWAY`` section; raises ``ValueError`` when a value is bad."""
    gw = section(config)
    try:
        max_body = int(gw["max_body"])
        timeout = float(gw["timeout"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"GATEWAY.max_body and GATEWAY.timeout must be numbers: {exc}") from exc
    if max_body < 0:
        raise ValueError("GATEWAY.max_body must not be negative")
    if timeout <= 0:
        raise ValueError("GATEWAY.timeout must be positive")
    try:
        auth_cache = float(gw.get("auth_cache", 10))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"GATEWAY.auth_cache must be a number of seconds: {exc}") from exc
    return GatewaySettings(
        address=str(gw["address"]),
        tokens=_names(gw.get("tokens")),
        expose=USER_SERVICES if gw.get("expose") is None else _names(gw.get("expose")),
        max_body=max_body,
        timeout=timeout,
        users=flag(gw.get("users")),
        auth_cache=max(auth_cache, 0.0),
    )


def flag(value):
    """A YAML boolean, also as the text ``true``/``1``/``yes`` (``${VAR:}`` substitution)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def is_loopback(address):
    """True when ``host:port`` (or ``[v6]:port``) names a loopback host.

    A bare port binds every interface, so it is not loopback.
    """
    host, sep, _port = str(address).strip().rpartition(":")
    return bool(sep) and is_loopback_host(host)


def check_address(address, tokens, users=False):
    """Raise ``ValueError`` when ``address`` is beyond loopback and a token is missing or weak.

    Beyond loopback, ``users`` (``GATEWAY.users``: callers authenticate as
    users) stands in for ``tokens``; a token given must still be strong. The
    message is one line naming the setting to change; it never quotes a token.
    """
    if is_loopback(address):
        return
    fix = (
        "GATEWAY.tokens (env GATEWAY_TOKEN with config/docker.yaml): "
        f"set a secret of {MIN_TOKEN_LENGTH} characters or more, {HOW_TO_GENERATE}"
    )
    if not tokens:
        if users:
            return
        raise ValueError(f"gateway bound to {address} needs {fix}{OR_USERS}")
    weak = [str(n) for n, token in enumerate(tokens, 1) if is_weak_token(token)]
    if weak:
        raise ValueError(
            f"gateway bound to {address} refuses a placeholder or short token "
            f"(number {', '.join(weak)} of {len(tokens)}) in {fix}"
        )


def check_bind(config):
    """SPEC 11: strong bearer tokens are required when the gateway binds beyond loopback."""
    gw = section(config)
    check_address(gw["address"], _names(gw.get("tokens")), flag(gw.get("users")))


def gateway_config(config):
    """A copy of the Mirror ``config`` ready for ``ServiceRunner(...)`` of the gateway.

    Sets nameko's ``WEB_SERVER_ADDRESS`` from ``GATEWAY.address`` and ``max_workers``
    from ``GATEWAY.max_workers`` (default 64), and refuses (``ValueError``) a
    non-loopback address without strong tokens.
    """
    check_bind(config)
    out = copy.deepcopy(config)
    gw = section(out)
    out[WEB_SERVER_ADDRESS] = str(gw["address"])
    out["max_workers"] = int(gw.get("max_workers") or DEFAULT_MAX_WORKERS)
    return out
