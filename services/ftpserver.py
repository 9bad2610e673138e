"""The pyftpdlib file server, run in its own process (eventlet removes ``select.epoll``)."""

import hmac
import logging
import os
from pathlib import Path

from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import FTPServer

from services.common.exposure import HOW_TO_GENERATE, is_loopback_host, is_placeholder
from services.config import DEFAULTS
from services.jobaccess import JOBS_DIR, job_of_user, password_matches, url_key

log = logging.getLogger(__name__)

WRITE_PERMS = "elradfmwMT"
READ_PERMS = "elr"

# The passwords of the embedded defaults, which config/mirror.yaml falls back
# on too: published with Mirror, hence no secret.
DEFAULT_PASSWORDS = frozenset(
    str(DEFAULTS["FTP"][account]["password"]).lower() for account in ("writer", "reader")
)


class JobAuthorizer(DummyAuthorizer):
    """The configured accounts, plus one read-only account per job (``job<id>``).

    A job account logs in with the HMAC password of :mod:`services.jobaccess`
    and has the job's published directory, ``<root>/jobs/<id>``, as its whole
    file system: packages, projects and other jobs lie outside it. Configured
    accounts win over a job account of the same name.
    """

    def __init__(self, root, key):
        super().__init__()
        self.jobs_root = os.path.realpath(os.path.join(root, JOBS_DIR))
        self.key = key

    def _job_home(self, username):
        """The home of ``username`` when it names a job account, else ``None``."""
        if username in self.user_table:
            return None
        job_id = job_of_user(username)
        return None if job_id is None else os.path.join(self.jobs_root, str(job_id))

    def validate_authentication(self, username, password, handler):
        home = self._job_home(username)
        if home is None:
            if username not in self.user_table or not hmac.compare_digest(
                self.user_table[username]["pwd"].encode(), str(password).encode()
            ):
                raise AuthenticationFailed("Authentication failed.")
            return
        # A job that published nothing has nothing to read.
        if not password_matches(self.key, username, password) or not os.path.isdir(home):
            raise AuthenticationFailed("Authentication failed.")

    def has_user(self, username):
        return self._job_home(username) is not None or super().has_user(username)

    def get_home_dir(self, username):
        home = self._job_home(username)
        return super().get_home_dir(username) if home is None else os.path.realpath(home)

    def has_perm(self, username, perm, path=None):
        if self._job_home(username) is None:
            return super().has_perm(username, perm, path)
        return perm in READ_PERMS

    def get_perms(self, username):
        return READ_PERMS if self._job_home(username) else super().get_perms(username)

    def get_msg_login(self, username):
        return "Login successful." if self._job_home(username) else super().get_msg_login(username)

    def get_msg_quit(self, username):
        return "Goodbye." if self._job_home(username) else super().get_msg_quit(username)


class CappedDTPHandler(DTPHandler):
    """A data channel that aborts an upload once it passes ``max_upload`` bytes."""

    max_upload = 0

    def handle_read(self):
        super().handle_read()
        if self.max_upload and self.receive and self.tot_bytes_received > self.max_upload:
            self._resp = (
                f"552 Upload exceeds the size cap of {self.max_upload} bytes.",
                log.warning,
            )
            # Nothing half-written stays behind; removed before the close that
            # the client sees, so that it never finds the file still there.
            if self.file_obj is not None and os.path.exists(self.file_obj.name):
                os.remove(self.file_obj.name)
            self.close()

    # pyftpdlib binds the event to the base class's method at class creation.
    handle_read_event = handle_read


class MirrorFTPHandler(FTPHandler):
    """pyftpdlib's handler, with STOR making the missing parent directories.

    For users allowed to make directories only; it saves an agent one MKD
    round trip per level for every result it publishes. ``validpath`` has
    already checked that the path lies inside the user's root.
    """

    def ftp_STOR(self, file, mode="w"):
        parent = os.path.dirname(file)
        if (
            not os.path.isdir(parent)
            and self.fs.validpath(parent)
            and self.authorizer.has_perm(self.username, "m", parent)
        ):
            try:
                self.run_as_current_user(os.makedirs, parent, exist_ok=True)
            except OSError as exc:
                log.info("STOR %s: parent not created: %s", file, exc)
        return super().ftp_STOR(file, mode)


def bind_address(ftp_config):
    """The host the server listens on: ``FTP.bind``, or ``FTP.host`` when that is empty."""
    return str(ftp_config.get("bind") or ftp_config["host"])


def is_default_password(password):
    """True when ``password`` is empty, a shipped default or a placeholder."""
    return is_placeholder(password) or str(password).strip().lower() in DEFAULT_PASSWORDS


def check_bind(ftp_config):
    """Raise ``ValueError`` when the server binds beyond loopback with a default password.

    The message is one line naming every setting to change; it never quotes a password.
    """
    address = bind_address(ftp_config)
    if is_loopback_host(address):
        return
    weak = [
        f"FTP.{account}.password (env FTP_{account.upper()}_PASSWORD)"
        for account in ("writer", "reader")
        if is_default_password((ftp_config.get(account) or {}).get("password"))
    ]
    # Empty is fine: the key is then derived from the writer password, checked above.
    secret = ftp_config.get("url_secret")
    if secret and is_default_password(secret):
        weak.append("FTP.url_secret (env FTP_URL_SECRET)")
    if weak:
        raise ValueError(
            f"file server bound to {address} refuses a default or empty password: "
            f"set {' and '.join(weak)} to a secret of your own, {HOW_TO_GENERATE}"
        )


def build_server(ftp_config):
    """Create (but do not start) the FTP server described by the ``FTP`` config section.

    Refuses (``ValueError``, see :func:`check_bind`) default passwords beyond loopback.
    """
    check_bind(ftp_config)
    root = Path(ftp_config["root"])
    root.mkdir(parents=True, exist_ok=True)
    authorizer = JobAuthorizer(root, url_key(ftp_config))
    writer, reader = ftp_config["writer"], ftp_config["reader"]
    # Both users are confined to the root; no anonymous user is ever added.
    # Job accounts are confined to their job's directory.
    authorizer.add_user(str(writer["user"]), str(writer["password"]), str(root), perm=WRITE_PERMS)
    authorizer.add_user(str(reader["user"]), str(reader["password"]), str(root), perm=READ_PERMS)

    dtp = type("MirrorDTPHandler", (CappedDTPHandler,), {"max_upload": ftp_config["max_upload"]})
    low, high = ftp_config["passive_ports"]
    handler = type(
        "ConfiguredFTPHandler",
        (MirrorFTPHandler,),
        {
            "authorizer": authorizer,
            "dtp_handler": dtp,
            "passive_ports": range(int(low), int(high) + 1),
            "banner": "Mirror file server ready.",
            "permit_foreign_addresses": False,
            "masquerade_address": ftp_config.get("masquerade_address") or None,
            "log_prefix": "ftp %(username)s@%(remote_ip)s",
        },
    )
    return FTPServer((bind_address(ftp_config), int(ftp_config["port"])), handler)


def serve(ftp_config):
    """Run the file server until interrupted."""
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    server = build_server(ftp_config)
    log.info(
        "file server on %s:%s, root %s", ftp_config["host"], ftp_config["port"], ftp_config["root"]
    )
    try:
        server.serve_forever(handle_exit=True)
    finally:
        server.close_all()
