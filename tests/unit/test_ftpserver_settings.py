"""The file server's bind rule: no default or empty password beyond loopback."""

import copy

import pytest

from services.config import DEFAULTS
from services.ftpserver import build_server, check_bind

OWN = "5d1e07c9a2b84f36"
WRITER = "FTP.writer.password (env FTP_WRITER_PASSWORD)"
READER = "FTP.reader.password (env FTP_READER_PASSWORD)"
HOW = "to a secret of your own, e.g. from `openssl rand -hex 32`"


def ftp(host="127.0.0.1", bind="", writer=None, reader=None):
    """The embedded ``FTP`` section with ``host``, ``bind`` and the passwords given."""
    section = copy.deepcopy(DEFAULTS["FTP"])
    section.update(host=host, bind=bind)
    if writer is not None:
        section["writer"]["password"] = writer
    if reader is not None:
        section["reader"]["password"] = reader
    return section


def refusal(section):
    with pytest.raises(ValueError) as info:
        check_bind(section)
    return str(info.value)


@pytest.mark.parametrize(
    "host, bind",
    [
        ("127.0.0.1", ""),
        ("127.3.2.1", ""),
        ("localhost", ""),
        ("LocalHost", ""),
        ("::1", ""),
        ("[::1]", ""),
        ("ftp.example.org", "127.0.0.1"),
    ],
)
def test_loopback_accepts_the_embedded_defaults(host, bind):
    check_bind(ftp(host, bind))
    check_bind(ftp(host, bind, writer="", reader=""))


@pytest.mark.parametrize(
    "host, bind, address",
    [
        ("0.0.0.0", "", "0.0.0.0"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("ftp", "", "ftp"),
        ("::", "", "::"),
        # What counts is where it listens: a loopback host behind a wide bind is refused.
        ("127.0.0.1", "0.0.0.0", "0.0.0.0"),
        # As in config/docker.yaml.
        ("ftp", "0.0.0.0", "0.0.0.0"),
    ],
)
def test_beyond_loopback_the_embedded_defaults_are_refused(host, bind, address):
    message = refusal(ftp(host, bind))
    assert message == (
        f"file server bound to {address} refuses a default or empty password: "
        f"set {WRITER} and {READER} {HOW}"
    )
    check_bind(ftp(host, bind, writer=OWN, reader=OWN + "r"))


@pytest.mark.parametrize(
    "writer, reader, named",
    [
        ("", OWN, WRITER),
        ("  ", OWN, WRITER),
        (None, OWN, WRITER),
        ("mirror-agent", OWN, WRITER),
        # The other account's default is just as public.
        ("mirror", OWN, WRITER),
        ("Change-Me", OWN, WRITER),
        (OWN, "", READER),
        (OWN, "mirror", READER),
        (OWN, "mirror-agent", READER),
    ],
)
def test_each_account_is_named_alone(writer, reader, named):
    section = ftp("0.0.0.0", writer=OWN, reader=OWN)
    section["writer"]["password"] = writer
    section["reader"]["password"] = reader
    message = refusal(section)
    assert message == (
        f"file server bound to 0.0.0.0 refuses a default or empty password: set {named} {HOW}"
    )
    assert "\n" not in message


def test_the_message_never_quotes_a_password():
    message = refusal(ftp("0.0.0.0", writer="change-me", reader=OWN))
    assert "change-me" not in message
    assert OWN not in message


def test_build_server_refuses_too(tmp_path):
    section = ftp("0.0.0.0")
    section["root"] = str(tmp_path / "ftp")
    with pytest.raises(ValueError, match="refuses a default or empty password"):
        build_server(section)
    # Refused before anything is made on disk or bound.
    assert not (tmp_path / "ftp").exists()
