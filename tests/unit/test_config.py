"""The configuration loader: substitution, defaults, derived values, errors."""

import pytest

from services.config import ConfigError, for_agent, load_config


def test_embedded_defaults_work_with_nothing_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config["AMQP_URI"] == "amqp://guest:guest@localhost"
    assert config["rpc_exchange"] == "mirror_com"
    assert config["DB_URL"] == f"sqlite:///{tmp_path / 'mirror-data' / 'mirror.db'}"
    assert config["FTP"]["root"] == str(tmp_path / "mirror-data" / "ftp")
    assert config["FTP"]["public_url"] == "ftp://mirror:mirror@127.0.0.1:2121"
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
