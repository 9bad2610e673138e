"""Options after the command, default allowed roots on a loopback mesh, the private broker's files."""

import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from services.cli.localbroker import node_files, wanted
from services.cli.main import parse_args
from services.config import load_config


@pytest.mark.parametrize(
    ("argv", "config", "level"),
    [
        (["up", "--config", "F", "--log-level", "DEBUG"], "F", "DEBUG"),
        (["--config", "F", "up"], "F", "INFO"),
        (["agent", "--rid", "2", "--config", "F"], "F", "INFO"),
        (["project", "list", "--config", "F"], "F", "INFO"),
        (["--config", "A", "jobs", "--config", "B"], "B", "INFO"),
        (["up"], None, "INFO"),
    ],
)
def test_global_options_before_or_after_the_command(argv, config, level, monkeypatch):
    monkeypatch.delenv("MIRROR_LOG_LEVEL", raising=False)
    args = parse_args(argv)
    assert (args.config, args.log_level) == (config, level)


def test_a_loopback_mesh_allows_home_and_temp_by_default(tmp_path):
    path = tmp_path / "mirror.yaml"
    path.write_text(f"DATA_DIR: {tmp_path}\n")
    config = load_config(str(path), environ={})
    assert config["AGENT"]["allowed_roots"] == [str(Path.home()), tempfile.gettempdir()]
    wide = load_config(str(path), environ={}, overrides={"GATEWAY": {"address": "0.0.0.0:8000"}})
    assert wide["AGENT"]["allowed_roots"] == []
    remote = load_config(
        str(path), environ={}, overrides={"AMQP_URI": "amqp://u:p@broker.example:5672"}
    )
    assert remote["AGENT"]["allowed_roots"] == []
    explicit = load_config(str(path), environ={}, overrides={"AGENT": {"allowed_roots": []}})
    assert explicit["AGENT"]["allowed_roots"] == []


def test_private_broker_files_keep_to_its_directory(tmp_path):
    uri = urlsplit("amqp://me:s3cret@127.0.0.1:5999/vh")
    env = node_files(tmp_path, uri, 5999)
    assert env["RABBITMQ_NODENAME"] == "mirror-5999@localhost"
    assert env["RABBITMQ_NODE_PORT"] == "5999"
    assert env["RABBITMQ_DIST_PORT"] != "25672"
    for key in ("RABBITMQ_CONFIG_FILE", "RABBITMQ_MNESIA_BASE", "RABBITMQ_LOG_BASE"):
        assert env[key].startswith(str(tmp_path))
    conf = (tmp_path / "rabbitmq.conf").read_text()
    assert "listeners.tcp.local = 127.0.0.1:5999" in conf
    assert "default_user = me" in conf and "default_vhost = vh" in conf
    # Only a local address nothing answers at wants a private node.
    assert wanted({"AMQP_URI": "amqp://u:p@broker.example:5672"}) is None
