"""Work that one central process at a time does: a lock shared by every central on one database.

Several ``mirror central`` processes may run on one database (SPEC section 2).
Claims and reports need nothing more (they lock the job row), but a periodic
pass such as the reconciler's is done by one of them at a time: the others
skip their pass while one holds the lock, and take it up once its holder
stops or dies.

- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a
  connection held for the pass. The server drops it with the connection, so
  a central killed mid-pass leaves no lock behind.
- SQLite: an exclusive ``flock`` on a file beside the database file; the
  kernel drops it with the process. An in-memory database belongs to one
  process, so there the lock is always free.

``lease(name)`` keeps such a lock across passes instead (the event relay): the
holder keeps it until it stops or dies, the others ask again now and then.
"""

import contextlib
import fcntl
import logging
import os
import zlib

from sqlalchemy import text

log = logging.getLogger(__name__)

TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
UNLOCK = text("SELECT pg_advisory_unlock(:key)")


def lock_key(name):
    """The advisory lock key of ``name``: a stable integer within PostgreSQL's bigint range."""
    return zlib.crc32(f"mirror.{name}".encode())


class Exclusive:
    """``hold(name)``: whether this process may do the work ``name`` now, held for the block."""

    def __init__(self, engine):
        self.engine = engine

    def lease(self, name):
        """A :class:`Lease` of ``name``: the same lock, kept from one pass to the next."""
        return Lease(self.engine, name)

    @contextlib.contextmanager
    def hold(self, name):
        """Context manager yielding True while this process holds ``name``, False if another does."""
        lease = Lease(self.engine, name)
        try:
            yield lease.renew()
        finally:
            lease.release()


class Lease:
    """A lock this process keeps once it has it: ``renew()`` takes it, checks it, or asks again."""

    def __init__(self, engine, name):
        self.engine = engine
        self.name = name
        self.held = False
        self._conn = None
        self._fd = None

    def renew(self):
        """Whether this process holds the lease now: taken if free, checked if held."""
        if self.engine.dialect.name == "postgresql":
            self.held = self._renew_advisory()
        else:
            self.held = self._renew_file()
        return self.held

    def release(self):
        """Give the lease back (a stopping process); another process may take it."""
        if self._conn is not None:
            try:
                self._conn.scalar(UNLOCK, {"key": lock_key(self.name)})
                self._conn.commit()
            except Exception as exc:  # noqa: BLE001 - closing drops the lock anyway
                log.warning("lease %s not released (%s); connection dropped", self.name, exc)
                self._conn.invalidate()
            self._conn.close()
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.held = False

    def _renew_advisory(self):
        if self._conn is not None:
            try:
                # The lock lives as long as this session: a live session still holds it.
                self._conn.scalar(text("SELECT 1"))
                self._conn.commit()
                return True
            except Exception as exc:  # noqa: BLE001 - a lost session has lost the lock
                log.warning("lease %s lost with its connection (%s)", self.name, exc)
                self._conn.invalidate()
                self._conn.close()
                self._conn = None
        conn = self.engine.connect()
        try:
            held = bool(conn.scalar(TRY_LOCK, {"key": lock_key(self.name)}))
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if held:
            self._conn = conn
        else:
            conn.close()
        return held

    def _renew_file(self):
        if self._fd is not None:
            return True
        database = self.engine.url.database
        if not database or database == ":memory:":
            return True
        fd = os.open(f"{database}.{self.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True
