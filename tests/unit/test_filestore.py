"""FileStore against a plain FTP server that does not create directories on STOR."""

import ftplib
import subprocess
import sys

from services.filestore import FileStore
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
