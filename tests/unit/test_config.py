"""The configuration loader: substitution, defaults, derived values, errors."""

import re
from pathlib import Path

import pytest
import yaml

from gateway import check_bind as check_gateway
from services.config import ConfigError, for_agent, load_config
from services.ftpserver import check_bind as check_ftp

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("GATEWAY_TOKEN", "FTP_WRITER_PASSWORD", "FTP_READER_PASSWORD", "FTP_PUBLIC_URL")


def test_embedded_defaults_work_with_nothing_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config["AMQP_URI"] == "amqp://guest:guest@localhost"
    assert config["rpc_exchange"] == "mirror_com"
    assert config["DB_URL"] == f"sqlite:///{tmp_path / 'mirror-data' / 'mirror.db'}"
    assert config["FTP"]["root"] == str(tmp_path / "mirror-data" / "ftp")
    assert config["FTP"]["public_url"] == "ftp://127.0.0.1:2121"
    assert config["FTP"]["url_secret"] == ""
    assert config["AGENT"]["work_root"] == str(tmp_path / "mirror-data" / "work" / "rid1")
    assert config["AGENT"]["slots"] >= 1
    assert config["DEBUG"]["autorun_job"] is False


def test_variables_with_defaults_and_types(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "AMQP_URI: amqp://${RUSER:guest}:${RPASS}@broker\n"
        "FTP: {port: '${FTP_PORT:2121}', reader: {user: r, password: '${PW:0123}'}}\n"
        "DEBUG: {autorun_job: '${AUTO:false}'}\n"
        "GATEWAY: {tokens: ['${TOKEN:}']}\n"
    )
    config = load_config(str(path), environ={"RPASS": "s3cret", "AUTO": "true", "TOKEN": "*tok"})
    assert config["AMQP_URI"] == "amqp://guest:s3cret@broker"
    assert config["FTP"]["port"] == 2121
    # A password of digits stays text; YAML would otherwise read 0123 as octal.
    assert config["FTP"]["reader"]["password"] == "0123"
    assert config["DEBUG"]["autorun_job"] is True
    assert config["GATEWAY"]["tokens"] == ["*tok"]
    # Sections merge over the defaults instead of replacing them.
    assert config["FTP"]["writer"]["user"] == "mirror-agent"


def test_mirror_config_variable_names_the_file(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("rpc_exchange: elsewhere\n")
    assert load_config(environ={"MIRROR_CONFIG": str(path)})["rpc_exchange"] == "elsewhere"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("AMQP_URI: ${NOPE}\n", "environment variable NOPE is not set and has no default"),
        ("- a list\n", "must hold a mapping at the top"),
        ("a: [unclosed\n", "is not valid YAML"),
        ("AGENT:\n  claim_ahead: -1\n", "AGENT.claim_ahead is -1; it must be a whole number"),
        ("AGENT:\n  claim_ahead: two\n", "AGENT.claim_ahead is 'two'; it must be a whole number"),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(str(path), environ={})


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "absent.yaml"), environ={})


def test_for_agent_derives_its_own_work_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    agent = for_agent(config, 5)
    assert agent["AGENT"]["rid"] == 5
    assert agent["AGENT"]["work_root"].endswith("rid5")
    assert agent["AGENT"]["name"].endswith("-5")
    assert config["AGENT"]["rid"] == 1


def test_docker_config_has_no_usable_default_secret():
    config = load_config(str(ROOT / "config" / "docker.yaml"), environ={})
    with pytest.raises(
        ValueError, match=r"^gateway bound to 0\.0\.0\.0:8000 needs GATEWAY\.tokens"
    ):
        check_gateway(config)
    with pytest.raises(ValueError) as info:
        check_ftp(config["FTP"])
    message = str(info.value)
    assert message.startswith("file server bound to 0.0.0.0 refuses a default or empty password")
    assert "FTP.writer.password (env FTP_WRITER_PASSWORD)" in message
    assert "FTP.reader.password (env FTP_READER_PASSWORD)" in message


def test_docker_config_takes_its_secrets_from_the_environment():
    environ = {
        "GATEWAY_TOKEN": "a" * 64,
        "FTP_WRITER_PASSWORD": "w" * 32,
        "FTP_READER_PASSWORD": "r" * 32,
        "FTP_PUBLIC_URL": "ftp://mirror.example.org:2121",
    }
    config = load_config(str(ROOT / "config" / "docker.yaml"), environ=environ)
    check_gateway(config)
    check_ftp(config["FTP"])
    assert config["GATEWAY"]["tokens"] == f"{'a' * 64},"
    assert config["FTP"]["writer"]["password"] == "w" * 32
    assert config["FTP"]["public_url"] == environ["FTP_PUBLIC_URL"]
    # Unset, the key of the job accounts is derived from the writer password.
    assert config["FTP"]["url_secret"] == ""
    environ["FTP_URL_SECRET"] = "u" * 32
    config = load_config(str(ROOT / "config" / "docker.yaml"), environ=environ)
    assert config["FTP"]["url_secret"] == "u" * 32


def test_local_config_on_its_defaults_starts_on_loopback():
    config = load_config(str(ROOT / "config" / "mirror.yaml"), environ={})
    check_gateway(config)
    check_ftp(config["FTP"])
    exposed = load_config(str(ROOT / "config" / "mirror.yaml"), environ={"FTP_HOST": "0.0.0.0"})
    with pytest.raises(ValueError, match="refuses a default or empty password"):
        check_ftp(exposed["FTP"])


def test_compose_requires_every_published_secret():
    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    uses = re.findall(r"\$\{(" + "|".join(SECRETS) + r")([^}]*)\}", text)
    assert {name for name, _ in uses} == set(SECRETS)
    # "${VAR:?message}": compose stops with the message when VAR is unset or empty.
    assert all(rest.startswith(":?") and len(rest) > 2 for _, rest in uses), uses
    for service in ("ftp", "central", "gateway", "agent1", "agent2"):
        environment = compose["services"][service]["environment"]
        assert {"FTP_WRITER_PASSWORD", "FTP_READER_PASSWORD", "FTP_PUBLIC_URL"} <= set(environment)
    assert "GATEWAY_TOKEN" in compose["services"]["gateway"]["environment"]
    # The key of the job accounts: optional, and the same on the server and the agents.
    keys = {compose["services"][s]["environment"]["FTP_URL_SECRET"] for s in ("ftp", "agent1")}
    assert keys == {"${FTP_URL_SECRET:-}"}
