"""Shared fixtures: a private vhost on the real broker, a private PostgreSQL database."""

# nameko 2.13+ no longer monkey-patches inside pytest; everything after this
# line must see the green socket, thread and subprocess modules.
import os
import warnings

# Hypothesis runs the "hypothesis" entry points of installed packages when it
# loads; trio's (a dependency of selenium) fails on eventlet's green socket.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import psycogreen.eventlet  # noqa: E402

psycogreen.eventlet.patch_psycopg()

import subprocess  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402

BROKER = "amqp://guest:guest@127.0.0.1:5672"


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
    from tests.mesh import create_pg_database, drop_pg_database

    name, url = create_pg_database()
    yield url
    drop_pg_database(name)
