"""Shared fixtures: a private vhost on the real broker, a private PostgreSQL database."""

# nameko 2.13+ no longer monkey-patches inside pytest; everything after this
# line must see the green socket, thread and subprocess modules.
import eventlet

eventlet.monkey_patch()

import psycogreen.eventlet  # noqa: E402

psycogreen.eventlet.patch_psycopg()

import subprocess  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402

BROKER = "amqp://guest:guest@127.0.0.1:5672"
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def vhost():
    """A RabbitMQ vhost of this test run, deleted afterwards."""
    name = f"mirror-test-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    _rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="session")
def amqp_uri(vhost):
    return f"{BROKER}/{vhost}"


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database, dropped after the test."""
    import sqlalchemy as sa

    name = f"mirror_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
