"""``mirror up`` with no broker at a local AMQP_URI starts a private RabbitMQ node, and stops it.

The config names an unused local port, so the machine's own broker is never
touched; ``--config`` comes after the command, as a newcomer types it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
import yaml

from services.client import Mirror
from tests.mesh import ROOT, free_port, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("rabbitmq-server") is None, reason="rabbitmq-server is not installed"
)


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def private_config(tmp_path, port):
    """A mesh config whose broker address is the unused local ``port``; ``(config, path)``."""
    config = {
        "AMQP_URI": f"amqp://guest:guest@127.0.0.1:{port}",
        "DATA_DIR": str(tmp_path / "data"),
        "FTP": {"port": free_port(), "passive_ports": [free_port()] * 2},
        "GATEWAY": {"address": f"127.0.0.1:{free_port()}"},
        "AGENT": {"heartbeat": 0.5},
    }
    path = tmp_path / "mirror.yaml"
    path.write_text(yaml.safe_dump(config))
    return config, path


def test_up_starts_and_stops_a_private_broker(tmp_path):
    port = free_port()
    assert not answers(port)
    config, path = private_config(tmp_path, port)
    out = open(tmp_path / "up.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--config", str(path)],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log = tmp_path / "up.log"
    try:
        wait_for(
            lambda: proc.poll() is None and "mesh up:" in log.read_text(),
            150,
            what=f"mirror up with a private broker:\n{log.read_text() if log.exists() else ''}",
        )
        text = log.read_text()
        assert f"started a private RabbitMQ node mirror-{port}@localhost" in text
        assert (tmp_path / "data" / "rabbitmq" / "mnesia").is_dir()
        # The mesh works on it: the agent registers through central.
        with Mirror(config["AMQP_URI"], timeout=10) as client:
            wait_for(lambda: any(m["online"] for m in client.machines()), 60, what="agent online")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(90)
    wait_for(lambda: not answers(port), 30, what="the private broker stopped")
    assert "private RabbitMQ node" in log.read_text()


def test_demo_runs_where_rabbitmq_is_installed_but_not_running(tmp_path):
    port = free_port()
    config, path = private_config(tmp_path, port)
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--up", "--exit", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "MIRROR_DEMO_SECONDS": "0.3", "MIRROR_LOG_LEVEL": "WARNING"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "starting the mesh and a private broker" in done.stdout
    assert done.stdout.count("COMPLETED") >= 3
    wait_for(lambda: not answers(port), 60, what="the private broker stopped")
