"""A private RabbitMQ node for ``mirror up`` when nothing answers at the local broker address.

The node is a child of ``mirror up``: its own node name (``mirror-<port>@localhost``),
the configured port on 127.0.0.1, its own Erlang distribution port, its data,
logs and configuration under ``DATA_DIR/rabbitmq``; it stops with the mesh. It
reads none of the system broker's configuration files, so the two never share
a port or a directory.
"""

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from services.common.exposure import is_loopback_host

log = logging.getLogger("mirror")

START_TIMEOUT = 90
STOP_TIMEOUT = 30
# Debian's /usr/sbin/rabbitmq-server switches to the ``rabbitmq`` user, which
# cannot reach a data directory of another user: the script it wraps runs the
# node as the caller.
UNWRAPPED = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def answers(host, port, timeout=1.0):
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command():
    """The ``rabbitmq-server`` to run, or None when it is not installed."""
    found = shutil.which("rabbitmq-server")
    if found is None:
        return None
    if UNWRAPPED.is_file() and os.access(UNWRAPPED, os.X_OK):
        return str(UNWRAPPED)
    return found


def wanted(config):
    """``(host, port)`` of a local broker address nothing answers at, else None."""
    parts = urlsplit(str(config["AMQP_URI"]))
    host, port = parts.hostname or "localhost", parts.port or 5672
    if not is_loopback_host(host) or answers(host, port):
        return None
    return host, port


def node_files(base, parts, port):
    """Write the node's configuration under ``base``; answer its environment."""
    base.mkdir(parents=True, exist_ok=True)
    user = unquote(parts.username or "guest")
    password = unquote(parts.password or "guest")
    vhost = unquote(parts.path[1:]) if parts.path not in ("", "/") else "/"
    conf = base / "rabbitmq.conf"
    conf.write_text(
        f"listeners.tcp.local = 127.0.0.1:{port}\n"
        f"default_user = {user}\n"
        f"default_pass = {password}\n"
        f"default_vhost = {vhost}\n"
        "loopback_users = none\n"
    )
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq-env.conf").write_text("")
    (base / "advanced.config").write_text("[].\n")
    return {
        "RABBITMQ_NODENAME": f"mirror-{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_CONFIG_FILE": str(conf),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }


class LocalBroker:
    """A running private node: :meth:`stop` ends it."""

    def __init__(self, proc, node, port, base):
        self.proc, self.node, self.port, self.base = proc, node, port, base

    def wait_ready(self, timeout=START_TIMEOUT):
        """Block until the node accepts connections; False when it died or took too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if answers("127.0.0.1", self.port):
                return True
            time.sleep(0.3)
        return False

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        log.info("private RabbitMQ node %s stopped", self.node)


def start_if_needed(config):
    """Start a private node when the local broker address is silent; None when not needed or not possible."""
    target = wanted(config)
    command = server_command() if target is not None else None
    if command is None:
        return None
    parts = urlsplit(str(config["AMQP_URI"]))
    port = target[1]
    base = Path(config["DATA_DIR"]) / "rabbitmq"
    env = {**os.environ, **node_files(base, parts, port)}
    out = open(base / "server.out", "ab")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen(
        [command], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    broker = LocalBroker(proc, env["RABBITMQ_NODENAME"], port, base)
    if not broker.wait_ready():
        broker.stop()
        log.error("the private RabbitMQ node did not start; see %s", base / "server.out")
        return None
    print(
        f"mirror up: no broker answered at 127.0.0.1:{port}; started a private RabbitMQ node "
        f"{broker.node} there (data in {base}); it stops with the mesh",
        flush=True,
    )
    return broker
