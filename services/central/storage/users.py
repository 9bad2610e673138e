"""The user registry: names, admin flags, and the hashes of their tokens and passwords."""

import logging

from sqlalchemy import select

from db.models import User
from services.central.credentials import check_password, hash_password, new_token
from services.central.storage.records import iso, now
from services.central.storage.retry import retry_disconnects
from services.common.errors import MirrorError
from services.common.identity import token_digest

log = logging.getLogger(__name__)


def user_missing(name):
    return MirrorError(f"user is not existed , user : {name}")


def user_dict(user):
    """A user as ``user.list`` answers it: never a hash."""
    return {
        "name": user.name,
        "admin": bool(user.admin),
        "created": iso(user.created),
        "has_password": bool(user.password_hash),
        "has_token": bool(user.token_sha256),
        "revoked": iso(user.revoked),
    }


@retry_disconnects
class Users:
    """All reads and writes of users."""

    def __init__(self, sessionmaker):
        self.Session = sessionmaker

    def _get(self, session, name):
        user = session.scalar(select(User).where(User.name == str(name)))
        if user is None:
            raise user_missing(name)
        return user

    def add(self, name, admin=False):
        """Create user ``name``; answer its first token (stored only as a hash)."""
        token = new_token()
        with self.Session.begin() as session:
            if session.scalar(select(User.id).where(User.name == name)) is not None:
                raise MirrorError(f"user {name} exists already")
            session.add(User(name=name, admin=bool(admin), token_sha256=token_digest(token)))
        log.info("User<%s> added%s", name, " (admin)" if admin else "")
        return token

    def list(self):
        """Every user, oldest first."""
        with self.Session() as session:
            return [user_dict(u) for u in session.scalars(select(User).order_by(User.id))]

    def new_token(self, name):
        """A new token for ``name``, replacing the old one (and lifting a revocation)."""
        token = new_token()
        with self.Session.begin() as session:
            user = self._get(session, name)
            user.token_sha256, user.revoked = token_digest(token), None
        log.info("User<%s> has a new token", name)
        return token

    def revoke(self, name):
        """Refuse ``name`` from now on: its token and password are dropped."""
        with self.Session.begin() as session:
            user = self._get(session, name)
            user.token_sha256, user.password_hash = None, None
            user.revoked = user.revoked or now()
        log.info("User<%s> revoked", name)

    def set_password(self, name, password):
        """Store the hash of ``password`` for ``name``."""
        digest = hash_password(password)
        with self.Session.begin() as session:
            user = self._get(session, name)
            if user.revoked is not None:
                raise MirrorError(f"user {name} is revoked; give them a new token first")
            user.password_hash = digest
        log.info("User<%s> password set", name)

    def by_token(self, token):
        """``(name, admin)`` of the active user holding ``token``, or None."""
        if not isinstance(token, str) or not token:
            return None
        with self.Session() as session:
            row = session.execute(
                select(User.name, User.admin).where(
                    User.token_sha256 == token_digest(token), User.revoked.is_(None)
                )
            ).first()
        return (row.name, bool(row.admin)) if row is not None else None

    def by_password(self, name, password):
        """``(name, admin)`` of the active user ``name`` when ``password`` is theirs, or None."""
        with self.Session() as session:
            user = session.scalar(select(User).where(User.name == str(name)))
            stored = user.password_hash if user is not None and user.revoked is None else None
            admin = bool(user.admin) if user is not None else False
        return (name, admin) if check_password(password, stored) else None

    def any(self):
        """True once a user has been created (revoked ones count)."""
        with self.Session() as session:
            return session.scalar(select(User.id).limit(1)) is not None
