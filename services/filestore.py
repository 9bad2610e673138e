"""A small FTP client over the file server, with a pool of logged-in connections."""

import ftplib
import io
import logging
import posixpath
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

from services.jobaccess import JOB_ID, JOBS_DIR, job_password, job_user, url_key

log = logging.getLogger(__name__)


class FileStoreError(Exception):
    """The file server could not be reached or refused an operation."""


class FileStore:
    """Put, get, publish and delete files on the Mirror file server."""

    def __init__(self, ftp_config, *, account="writer", pool_size=4, timeout=30):
        self.host = ftp_config["host"]
        self.port = int(ftp_config["port"])
        self.user = str(ftp_config[account]["user"])
        self.password = str(ftp_config[account]["password"])
        self.public_url = ftp_config["public_url"]
        self.url_key = url_key(ftp_config)
        self.timeout = timeout
        self.pool_size = pool_size
        self._idle = []
        self._lock = threading.Lock()

    # -- connections -------------------------------------------------------
    def _connect(self):
        ftp = ftplib.FTP(timeout=self.timeout)
        try:
            ftp.connect(self.host, self.port)
            ftp.login(self.user, self.password)
        except (OSError, ftplib.Error) as exc:
            ftp.close()
            raise FileStoreError(
                f"file server ftp://{self.host}:{self.port} unreachable: {exc}"
            ) from exc
        return ftp

    @contextmanager
    def _conn(self):
        with self._lock:
            ftp = self._idle.pop() if self._idle else None
        if ftp is None:
            ftp = self._connect()
        try:
            yield ftp
        except ftplib.error_perm:
            # The server refused one command; the session itself is still good.
            self._release(ftp)
            raise
        except BaseException:
            ftp.close()
            raise
        else:
            self._release(ftp)

    def _release(self, ftp):
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(ftp)
                return
        ftp.close()

    def _run(self, what, fn):
        """Run ``fn(ftp)``, once more on a fresh connection if a pooled one went stale."""
        for attempt in (1, 2):
            try:
                with self._conn() as ftp:
                    return fn(ftp)
            except ftplib.error_perm as exc:
                raise FileStoreError(f"file server refused {what}: {exc}") from exc
            except (OSError, EOFError, ftplib.Error) as exc:
                if attempt == 2:
                    raise FileStoreError(f"file server failed {what}: {exc}") from exc

    def close(self):
        with self._lock:
            idle, self._idle = self._idle, []
        for ftp in idle:
            try:
                ftp.quit()
            except (OSError, EOFError, ftplib.Error):
                ftp.close()

    # -- operations --------------------------------------------------------
    @staticmethod
    def _makedirs(ftp, directory):
        parts = [p for p in directory.strip("/").split("/") if p]
        path = ""
        for part in parts:
            path += "/" + part
            try:
                ftp.mkd(path)
            except ftplib.error_perm as exc:
                if not str(exc).startswith("550"):
                    raise

    def put_bytes(self, remote, data):
        """Store ``data`` at ``remote`` (an absolute path on the server)."""
        return self.put_file(remote, io.BytesIO(data))

    def put_file(self, remote, fileobj):
        def op(ftp):
            try:
                ftp.storbinary(f"STOR {remote}", fileobj)
            except ftplib.error_perm as exc:
                # Our server makes missing parents itself; another answers 550 or 553.
                if str(exc)[:3] not in ("550", "553"):
                    raise
                fileobj.seek(0)
                self._makedirs(ftp, posixpath.dirname(remote))
                ftp.storbinary(f"STOR {remote}", fileobj)

        self._run(f"upload of {remote}", op)
        return remote

    def upload(self, local, remote):
        """Upload a local file, or a directory tree, to ``remote``."""
        local = Path(local)
        if local.is_dir():
            for path in sorted(local.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    self.upload(path, posixpath.join(remote, path.relative_to(local).as_posix()))
            return remote
        with open(local, "rb") as fh:
            return self.put_file(remote, fh)

    def get_bytes(self, remote):
        buf = io.BytesIO()
        self._run(f"download of {remote}", lambda ftp: ftp.retrbinary(f"RETR {remote}", buf.write))
        return buf.getvalue()

    def download(self, remote, local):
        """Download ``remote`` into the local file ``local``."""
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(local.name + ".part")

        def op(ftp):
            with open(tmp, "wb") as fh:
                ftp.retrbinary(f"RETR {remote}", fh.write)

        self._run(f"download of {remote}", op)
        tmp.replace(local)
        return local

    def delete_tree(self, remote):
        """Remove ``remote`` and everything below it; a missing path is not an error."""

        def rm(ftp, path):
            try:
                entries = list(ftp.mlsd(path, facts=["type"]))
            except ftplib.error_perm:
                return
            for name, facts in entries:
                if name in (".", ".."):
                    continue
                child = posixpath.join(path, name)
                if facts.get("type") == "dir":
                    rm(ftp, child)
                else:
                    ftp.delete(child)
            ftp.rmd(path)

        def op(ftp):
            try:
                ftp.delete(remote)
            except ftplib.error_perm:
                rm(ftp, remote)

        self._run(f"removal of {remote}", op)

    def url(self, remote):
        """The ``ftp://`` URL of a job's published file ``/jobs/<id>/...``.

        It names the job's own read-only account (see :mod:`services.jobaccess`),
        whose home is ``/jobs/<id>``: the path is relative to it. Scheme, host and
        port come from ``public_url``; any account written there is replaced.
        Raises ``ValueError`` for a path outside a job's directory, which no
        handed-out URL may reach.
        """
        parts = posixpath.normpath("/" + str(remote).lstrip("/")).split("/")[1:]
        if len(parts) < 3 or parts[0] != JOBS_DIR or not JOB_ID.fullmatch(parts[1]):
            raise ValueError(
                f"no URL for {remote}: only a job's published files (/{JOBS_DIR}/<id>/...) "
                "are handed out"
            )
        user = job_user(parts[1])
        base = urlsplit(self.public_url)
        host = base.hostname or self.host
        if ":" in host:
            host = f"[{host}]"
        port = base.port or self.port
        password = job_password(self.url_key, user)
        path = quote("/" + "/".join(parts[2:]))
        return f"{base.scheme or 'ftp'}://{user}:{password}@{host}:{port}{path}"
