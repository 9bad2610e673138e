"""Engine and session set-up for PostgreSQL and the embedded SQLite file."""

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker


def make_engine(url):
    """Create an engine tuned for Mirror's green-threaded central services."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection at a time: SQLite calls block the whole process, so a
        # second green thread waiting on a locked file would wait forever.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # No pre-ping (a round trip per checkout): a call that meets a connection
    # dead since a database restart is retried on a fresh one (services/central/storage/retry.py).
    return create_engine(url, pool_size=10, max_overflow=20, insertmanyvalues_page_size=10000)


def make_sessionmaker(engine):
    return sessionmaker(engine, expire_on_commit=False)
