"""FileStore: against a plain FTP server (no directories made on STOR), and its URLs."""

import ftplib
import hashlib
import hmac
import re
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from services.filestore import FileStore
from services.jobaccess import job_of_user, job_password, job_user, password_matches, url_key
from tests.mesh import free_port, wait_for

PLAIN_SERVER = (
    "import sys; from pyftpdlib.authorizers import DummyAuthorizer;"
    "from pyftpdlib.handlers import FTPHandler; from pyftpdlib.servers import FTPServer;"
    "a = DummyAuthorizer(); a.add_user('w', 'p', sys.argv[1], perm='elradfmw');"
    "h = type('H', (FTPHandler,), {'authorizer': a, 'passive_ports': [int(sys.argv[3])]});"
    "FTPServer(('127.0.0.1', int(sys.argv[2])), h).serve_forever()"
)


def answers(port):
    client = ftplib.FTP()
    client.connect("127.0.0.1", port, timeout=5)
    client.login("w", "p")
    client.quit()
    return True


def test_the_file_store_creates_directories_on_servers_that_do_not(tmp_path):
    """FileStore's fallback: STOR refused for a missing directory, then MKD and STOR again."""
    port, passive = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", PLAIN_SERVER, str(tmp_path), str(port), str(passive)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: answers(port), 20, what="a plain pyftpdlib server")
        store = FileStore(
            {
                "host": "127.0.0.1",
                "port": port,
                "public_url": f"ftp://127.0.0.1:{port}",
                "writer": {"user": "w", "password": "p"},
            }
        )
        store.put_bytes("/a/b/c.txt", b"abc")
        store.close()
        assert (tmp_path / "a/b/c.txt").read_bytes() == b"abc"
    finally:
        proc.terminate()
        proc.wait(10)


# -- handed-out URLs ----------------------------------------------------------------------
def store(public_url="ftp://127.0.0.1:2121", **ftp):
    return FileStore(
        {
            "host": "127.0.0.1",
            "port": 2121,
            "public_url": public_url,
            "writer": {"user": "mirror-agent", "password": "w-secret"},
            **ftp,
        }
    )


def test_a_url_names_the_job_account_and_a_path_inside_its_home():
    url = store().url("/jobs/42/result/force/force.dat")
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port) == ("ftp", "127.0.0.1", 2121)
    assert parts.username == "job42"
    assert parts.password == job_password(url_key({"writer": {"password": "w-secret"}}), "job42")
    assert re.fullmatch(r"[0-9a-f]{32}", parts.password)
    assert parts.path == "/result/force/force.dat"


def test_the_password_is_the_hmac_of_the_user_name_under_the_key():
    key = url_key({"url_secret": "k" * 32, "writer": {"password": "w"}})
    assert key == b"k" * 32
    expected = hmac.new(key, b"job7", hashlib.sha256).hexdigest()[:32]
    assert job_password(key, "job7") == expected
    assert password_matches(key, "job7", expected)
    assert not password_matches(key, "job8", expected)
    flipped = expected[:-1] + ("1" if expected[-1] == "0" else "0")
    assert not password_matches(key, "job7", flipped)
    assert not password_matches(key, "job7", expected + "0")


def test_each_job_and_each_key_has_its_own_password():
    url = store().url
    assert urlsplit(url("/jobs/1/result/a")).password != urlsplit(url("/jobs/2/result/a")).password
    other = store(url_secret="another key of mine").url("/jobs/1/result/a")
    assert urlsplit(other).password != urlsplit(url("/jobs/1/result/a")).password
    # Empty: derived from the writer password, never the password itself.
    derived = url_key({"url_secret": "", "writer": {"password": "w-secret"}})
    assert derived != b"w-secret" and len(derived) == 32
    assert derived != url_key({"writer": {"password": "other"}})


def test_public_url_gives_scheme_host_and_port_and_loses_any_account():
    url = store("ftp://mirror:reader-pw@files.example.org:2200/ignored/").url("/jobs/3/p/x y")
    assert url.startswith("ftp://job3:") and "reader-pw" not in url and "mirror:" not in url
    parts = urlsplit(url)
    assert (parts.hostname, parts.port, parts.path) == ("files.example.org", 2200, "/p/x%20y")
    ipv6 = urlsplit(store("ftp://[::1]:2121").url("/jobs/3/r/f"))
    assert (ipv6.hostname, ipv6.port) == ("::1", 2121)


def test_a_url_without_a_port_takes_the_configured_one():
    assert urlsplit(store("ftp://files.example.org").url("/jobs/3/r/f")).port == 2121


@pytest.mark.parametrize(
    "remote",
    [
        "/packages/1/package.zip",
        "/projects/1/files/para.xml",
        "/jobs/",
        "/jobs/5",
        "/jobs/5/",
        "/jobs/x/result/f",
        "/jobs/05/result/f",
        "/jobs/5/../../packages/1/package.zip",
        "/other/jobs/5/result/f",
    ],
)
def test_no_url_for_anything_outside_a_job_directory(remote):
    with pytest.raises(ValueError, match=r"only a job's published files \(/jobs/<id>/\.\.\.\)"):
        store().url(remote)


def test_job_account_names():
    assert job_user(42) == "job42" and job_user("7") == "job7"
    assert job_of_user("job42") == 42
    for name in ("job", "job0", "job042", "jobs1", "job1x", "mirror", "job-1", " job1"):
        assert job_of_user(name) is None, name
