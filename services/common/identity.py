"""Who makes a call: the user named in nameko context data, or the built-in admin ``local``.

RPC over the broker is inside the trust boundary: a call that names no user
acts as ``local``. The gateway names the user it authenticated in the context
data of every call it makes (:func:`context_of`), never in an argument.
"""

import hashlib
from dataclasses import dataclass

#: Context data keys (nameko sends them as ``nameko.<key>`` message headers).
USER_KEY = "mirror_user"
ADMIN_KEY = "mirror_admin"

#: The built-in admin of callers over the broker and of an open loopback gateway.
LOCAL_NAME = "local"
#: The admin that holders of a ``GATEWAY.tokens`` token act as.
TOKEN_ADMIN_NAME = "admin"
#: Names no user may take.
RESERVED_NAMES = frozenset({LOCAL_NAME, TOKEN_ADMIN_NAME})


@dataclass(frozen=True)
class Identity:
    """A caller: its name, and whether it sees and acts on everything."""

    name: str
    admin: bool

    @property
    def scope(self):
        """The owner whose work this caller sees, or None for all of it (an admin)."""
        return None if self.admin else self.name


LOCAL = Identity(LOCAL_NAME, True)
TOKEN_ADMIN = Identity(TOKEN_ADMIN_NAME, True)


def identity_of(data):
    """The caller named by the context data ``data`` (``local`` when it names nobody)."""
    name = (data or {}).get(USER_KEY)
    if not name:
        return LOCAL
    return Identity(str(name), bool((data or {}).get(ADMIN_KEY)))


def context_of(identity):
    """The context data that names ``identity`` on outgoing calls."""
    return {USER_KEY: identity.name, ADMIN_KEY: bool(identity.admin)}


def token_digest(token):
    """What is stored of a bearer token: its sha256, in hex."""
    return hashlib.sha256(str(token).encode("utf-8")).hexdigest()
