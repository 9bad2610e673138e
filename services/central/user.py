"""The ``user`` service: the user registry, and the authentication the gateway asks for.

Internal to the mesh (``services.common.surface``) except ``whoami``: the
``mirror user`` commands call it over the broker.
"""

from services.central.credentials import check_user_name
from services.central.providers import Caller, Database
from services.common.errors import MirrorError
from services.common.rpc import mirror_rpc, to_int


class UserService:
    """Users, their tokens and passwords; who a token or a password names."""

    name = "user"

    db = Database()
    caller = Caller()

    def _admin_only(self, what):
        if not self.caller.admin:
            raise MirrorError(f"only an admin may {what}")

    @mirror_rpc
    def add(self, name, admin=0):
        """Create user ``name``; answer ``{name, admin, token}``, the token shown this once."""
        self._admin_only("add users")
        admin = bool(to_int(admin, "admin"))
        token = self.db.users.add(check_user_name(name), admin)
        return {"name": name, "admin": admin, "token": token}

    @mirror_rpc
    def list(self):
        """Every user: name, admin, created, has_password, has_token, revoked."""
        self._admin_only("list users")
        return self.db.users.list()

    @mirror_rpc
    def token(self, name):
        """A new token for ``name`` (the old one stops working); answer ``{name, token}``."""
        self._admin_only("issue tokens")
        return {"name": name, "token": self.db.users.new_token(name)}

    @mirror_rpc
    def revoke(self, name):
        """Refuse ``name``'s token and password from now on (``token`` gives a new one)."""
        self._admin_only("revoke users")
        self.db.users.revoke(name)
        return []

    @mirror_rpc
    def passwd(self, name, password):
        """Set ``name``'s password (for the login of the machine API)."""
        self._admin_only("set passwords")
        self.db.users.set_password(name, password)
        return []

    @mirror_rpc
    def authenticate(self, token=None):
        """``{user: {name, admin} or null, users: whether any user exists}`` for a bearer token."""
        found = self.db.users.by_token(token)
        user = {"name": found[0], "admin": found[1]} if found else None
        return {"user": user, "users": True if found else self.db.users.any()}

    @mirror_rpc
    def login(self, name, password):
        """``{name, admin}`` when ``password`` is ``name``'s, else a refusal."""
        found = self.db.users.by_password(name, password)
        if found is None:
            raise MirrorError("wrong user name or password")
        return {"name": found[0], "admin": found[1]}

    @mirror_rpc
    def whoami(self):
        """The caller: ``{name, admin}``."""
        return {"name": self.caller.name, "admin": self.caller.admin}
