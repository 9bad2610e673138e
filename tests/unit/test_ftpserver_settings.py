"""The file server's bind rule (no default or empty secret beyond loopback) and its accounts."""

import copy

import pytest
from pyftpdlib.authorizers import AuthenticationFailed

from services.config import DEFAULTS
from services.ftpserver import READ_PERMS, JobAuthorizer, build_server, check_bind
from services.jobaccess import job_password, url_key

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


@pytest.mark.parametrize("secret", ["mirror", "mirror-agent", "change-me", "  secret "])
def test_beyond_loopback_a_default_url_secret_is_refused(secret):
    section = ftp("0.0.0.0", writer=OWN, reader=OWN + "r")
    section["url_secret"] = secret
    message = refusal(section)
    assert message == (
        "file server bound to 0.0.0.0 refuses a default or empty password: "
        f"set FTP.url_secret (env FTP_URL_SECRET) {HOW}"
    )
    # Empty: derived from the writer password, which is checked already.
    section["url_secret"] = ""
    check_bind(section)
    section["url_secret"] = OWN + "u"
    check_bind(section)
    # On loopback anything goes, as for the passwords.
    check_bind(dict(ftp(), url_secret="mirror"))


# -- the job accounts ----------------------------------------------------------------------
@pytest.fixture
def authorizer(tmp_path):
    (tmp_path / "jobs" / "42").mkdir(parents=True)
    section = ftp()
    auth = JobAuthorizer(str(tmp_path), url_key(section))
    auth.add_user("mirror", "mirror", str(tmp_path), perm=READ_PERMS)
    return auth, section, tmp_path


def test_a_job_account_logs_in_with_its_hmac_into_its_own_directory(authorizer):
    auth, section, root = authorizer
    auth.validate_authentication("job42", job_password(url_key(section), "job42"), None)
    assert auth.has_user("job42")
    assert auth.get_home_dir("job42") == str((root / "jobs" / "42").resolve())
    assert auth.get_perms("job42") == "elr"
    for perm in "elr":
        assert auth.has_perm("job42", perm, str(root / "jobs" / "42" / "result"))
    for perm in "adfmwMT":
        assert not auth.has_perm("job42", perm, str(root / "jobs" / "42" / "result"))


@pytest.mark.parametrize(
    "user, password",
    [
        ("job42", "0" * 32),
        ("job42", ""),
        # Another job's password opens nothing here.
        ("job42", "job43"),
        # A job that published nothing has no directory to log into.
        ("job43", "job43"),
        ("job042", "job042"),
        ("nobody", "nobody"),
        ("mirror", "wrong"),
    ],
)
def test_anything_else_is_refused(authorizer, user, password):
    auth, section, _ = authorizer
    if password.startswith("job"):
        password = job_password(url_key(section), password)
    with pytest.raises(AuthenticationFailed):
        auth.validate_authentication(user, password, None)


def test_a_configured_account_keeps_its_own_rules(authorizer):
    auth, _, root = authorizer
    auth.validate_authentication("mirror", "mirror", None)
    assert auth.get_home_dir("mirror") == str(root.resolve())
    assert not auth.has_user("someone")
