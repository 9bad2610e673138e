"""Who calls the gateway: a ``GATEWAY.tokens`` admin, a user of central's ``user`` service, or ``local``.

``Authorization: Bearer <token>`` names the caller:

- a token of ``GATEWAY.tokens``: the admin ``admin``, with no call to central;
- a user's token (``mirror user add``): that user, as central's
  ``user.authenticate`` answers, kept ``GATEWAY.auth_cache`` seconds;
- on a loopback gateway with no ``GATEWAY.tokens``, no ``GATEWAY.users`` and
  no user created yet (the *open* mode of the demo and the examples): anyone
  acts as the built-in admin ``local``.

Anything else is 401. The caller's name goes to the mesh in the context data
of every call the request makes (:func:`services.common.identity.context_of`).
"""

import hmac
import logging
import time

from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.extensions import DependencyProvider

from services.common.identity import LOCAL, TOKEN_ADMIN, Identity, context_of, token_digest

from .errors import Unauthorized
from .settings import is_loopback, read_settings

log = logging.getLogger(__name__)

# Answers kept at most; past it the cache starts afresh.
MAX_CACHED = 4096
# The authentication call must not hold a request for the whole RPC timeout.
AUTH_TIMEOUT = 5.0

WRONG_TOKEN = "missing or wrong bearer token"


def bearer(authorization):
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    given = given.strip()
    return given if scheme.lower() == "bearer" and given else None


def static_match(token, tokens):
    """True when ``token`` is one of ``tokens``, compared in constant time."""
    if token is None:
        return False
    given = token.encode()
    ok = False
    # Compare with every token, whatever matches, so the time taken tells nothing.
    for candidate in tokens:
        ok |= hmac.compare_digest(given, candidate.encode())
    return ok


class Authenticator:
    """Turns an ``Authorization`` header into an :class:`Identity`; one per gateway."""

    def __init__(self, settings, address, clock=time.monotonic):
        self.tokens = settings.tokens
        self.open = is_loopback(address) and not settings.tokens and not settings.users
        self.ttl = settings.auth_cache
        self.clock = clock
        self._cache = {}

    def identify(self, authorization, services):
        """The caller of a request, or :class:`Unauthorized`."""
        token = bearer(authorization)
        if static_match(token, self.tokens):
            return TOKEN_ADMIN
        if token is None and not self.open:
            raise Unauthorized(WRONG_TOKEN)
        answer = self._ask(token, services)
        if answer is None:
            # Central's user service does not answer: nobody is known, so the
            # open mode stays open (every other call needs central anyway).
            if self.open:
                return LOCAL
            raise Unauthorized(WRONG_TOKEN)
        if answer.get("user"):
            user = answer["user"]
            return Identity(str(user["name"]), bool(user["admin"]))
        if self.open and not answer.get("users"):
            return LOCAL
        raise Unauthorized(WRONG_TOKEN)

    def _ask(self, token, services):
        """``user.authenticate``'s answer for ``token``, from the cache when fresh."""
        key = token_digest(token) if token is not None else ""
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            code, value = services.call("user", "authenticate", {"token": token}, AUTH_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - any failure: nobody is authenticated
            log.warning("user.authenticate failed: %s", type(exc).__name__)
            return None
        if code != 0:
            log.warning("user.authenticate refused: %s", value)
            return None
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        if self.ttl > 0:
            self._cache[key] = (now + self.ttl, value)
        return value


class Door:
    """What a worker sees: :meth:`admit` names the request's caller on its outgoing calls."""

    __slots__ = ("_authenticator", "_data")

    def __init__(self, authenticator, data):
        self._authenticator = authenticator
        self._data = data

    def admit(self, authorization, services):
        """Authenticate; the caller's name goes into the context data of the worker's calls."""
        identity = self._authenticator.identify(authorization, services)
        # Set, never merged: nothing a client sent may name someone else.
        self._data.update(context_of(identity))
        return identity


class Auth(DependencyProvider):
    """One :class:`Authenticator` per gateway; each worker gets a :class:`Door` to it."""

    def setup(self):
        config = self.container.config
        settings = read_settings(config)
        bound = config.get(WEB_SERVER_CONFIG_KEY, "0.0.0.0:8000")
        self.authenticator = Authenticator(settings, bound)

    def get_dependency(self, worker_ctx):
        return Door(self.authenticator, worker_ctx.data)
