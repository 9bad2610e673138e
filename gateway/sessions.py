"""Login sessions of the machine API: a random id in an HttpOnly cookie, kept in the gateway's memory.

``POST /api/auth`` checks a user's name and password with central's
``user.login`` and opens a session; the browser (or ``requests.Session``) then
sends the cookie :data:`COOKIE` with every call. Sessions live in one gateway
process only, in a dict with an expiry (``GATEWAY.session_ttl`` seconds, 8 h by
default): a restarted gateway forgets them, and two gateways do not share them.
A session is as good as the password that opened it until it expires or is
ended with ``DELETE /api/auth``; revoking the user (``mirror user revoke``)
refuses new logins at once and ends the user's open sessions within
``GATEWAY.auth_cache`` seconds (each session is checked again that often).
"""

import logging
import secrets
import time

from nameko.extensions import DependencyProvider

from services.common.identity import Identity, context_of

from .auth import AUTH_TIMEOUT
from .errors import Unauthorized, Unavailable
from .settings import read_settings, section

log = logging.getLogger(__name__)

COOKIE = "mirror_session"
DEFAULT_TTL = 8 * 3600.0
# Sessions kept at most; past it the oldest are dropped first.
MAX_SESSIONS = 10000

NOT_LOGGED_IN = "not logged in: POST /api/auth with username and password, or send a bearer token"


def session_ttl(config):
    """``GATEWAY.session_ttl``: seconds a session lasts (default 8 h)."""
    ttl = section(config).get("session_ttl", DEFAULT_TTL)
    try:
        ttl = float(ttl)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"GATEWAY.session_ttl must be a number of seconds: {exc}") from exc
    if ttl <= 0:
        raise ValueError("GATEWAY.session_ttl must be positive")
    return ttl


class SessionStore:
    """Session id -> ``(Identity, expiry, next check)``; one per gateway process."""

    def __init__(self, ttl=DEFAULT_TTL, recheck=10.0, clock=time.monotonic):
        self.ttl = ttl
        self.recheck = recheck
        self.clock = clock
        self._sessions = {}

    def open(self, identity):
        """A new session id for ``identity``."""
        self._expire()
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        self._sessions[sid] = (identity, now + self.ttl, now + self.recheck)
        return sid

    def get(self, sid):
        """``(identity, due)`` of a live session (``due``: time to ask central again), or None."""
        entry = self._sessions.get(sid or "")
        if entry is None:
            return None
        identity, expiry, check = entry
        now = self.clock()
        if expiry <= now:
            self._sessions.pop(sid, None)
            return None
        return identity, check <= now

    def checked(self, sid):
        """Central confirmed the session's user again: next check in ``recheck`` seconds."""
        entry = self._sessions.get(sid)
        if entry is not None:
            self._sessions[sid] = (entry[0], entry[1], self.clock() + self.recheck)

    def close(self, sid):
        """End a session; True when it existed."""
        return self._sessions.pop(sid or "", None) is not None

    def _expire(self):
        now = self.clock()
        for sid in [s for s, entry in self._sessions.items() if entry[1] <= now]:
            del self._sessions[sid]


def login(services, name, password):
    """The :class:`Identity` of ``name`` when ``password`` is theirs (central's ``user.login``)."""
    try:
        code, value = services.call(
            "user", "login", {"name": name, "password": password}, AUTH_TIMEOUT
        )
    except Exception as exc:  # noqa: BLE001 - nobody is logged in when central does not answer
        log.warning("user.login failed: %s", type(exc).__name__)
        raise Unavailable("the user service does not answer; try again") from None
    if code != 0:
        raise Unauthorized(str(value))
    return Identity(str(value["name"]), bool(value["admin"]))


def still_valid(services, identity):
    """Whether central still knows ``identity`` as an unrevoked user (True when it cannot say)."""
    try:
        code, value = services.call("user", "list", {}, AUTH_TIMEOUT)
    except Exception:  # noqa: BLE001 - central away: the session stands until it answers
        return True
    if code != 0:
        return True
    for user in value:
        if user.get("name") == identity.name:
            return not user.get("revoked")
    return False


class SessionDoor:
    """A worker's door: the session cookie's user if there is one, else the bearer token's."""

    __slots__ = ("_store", "_door", "_data", "_sid")

    def __init__(self, store, door, data, sid):
        self._store = store
        self._door = door
        self._data = data
        self._sid = sid

    def session(self, services):
        """The logged-in :class:`Identity` of the request's cookie, or None."""
        found = self._store.get(self._sid)
        if found is None:
            return None
        identity, due = found
        if due:
            if not still_valid(services, identity):
                self._store.close(self._sid)
                return None
            self._store.checked(self._sid)
        return identity

    def admit(self, authorization, services):
        """The caller: a bearer token first (as everywhere), else the session."""
        if authorization:
            return self._door.admit(authorization, services)
        identity = self.session(services)
        if identity is not None:
            # Set, never merged: nothing a client sent may name someone else.
            self._data.update(context_of(identity))
            return identity
        try:
            return self._door.admit(authorization, services)
        except Unauthorized:
            raise Unauthorized(NOT_LOGGED_IN, {"WWW-Authenticate": "Bearer"}) from None

    def start(self, identity):
        """Open a session for ``identity``; its id."""
        self._data.update(context_of(identity))
        return self._store.open(identity)

    def end(self):
        """End the request's session; True when it had one."""
        return self._store.close(self._sid)


class Sessions(DependencyProvider):
    """One :class:`SessionStore` per gateway; ``get(door, request)`` gives a :class:`SessionDoor`."""

    def setup(self):
        config = self.container.config
        recheck = max(read_settings(config).auth_cache, 1.0)
        self.store = SessionStore(session_ttl(config), recheck)

    def get_dependency(self, worker_ctx):
        store, data = self.store, worker_ctx.data

        def door_for(door, request):
            return SessionDoor(store, door, data, request.cookies.get(COOKIE))

        return door_for
