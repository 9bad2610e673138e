"""``GET /files/jobs/<id>/<process|result>/<key>``: a job's published file, read from the file server.

The gateway asks central for the job's ``ftp://`` URLs (``jobgetdata.do``, as
the caller: someone else's job answers as missing), takes the one of ``key``
and streams the file with that URL's credentials, the job's own read-only
account. It connects to the file server at ``FTP.host``/``FTP.port``: the
URL's host is the address handed to users, which may be one seen from outside.
"""

import ftplib
import logging
import mimetypes
import posixpath
from urllib.parse import unquote, urlsplit

from werkzeug.wrappers import Response

from . import mesh
from .errors import NotFound, Unavailable
from .events import unbuffered
from .parsing import parse_job_id

log = logging.getLogger(__name__)

KINDS = ("process", "result")
CHUNK = 64 * 1024
FTP_TIMEOUT = 30


def file_url(data, kind, key, job_id):
    """The ``ftp://`` URL of ``key`` among the job's ``process`` or ``result`` files."""
    if kind not in KINDS:
        raise NotFound(f"no route: /files/jobs/{job_id}/{kind}/{key}")
    url = (data.get(kind) or {}).get(key)
    if not isinstance(url, str) or not url.startswith("ftp://"):
        raise NotFound(f"job {job_id} has no {kind} file {key!r}")
    return url


def open_transfer(url, host, port, timeout=FTP_TIMEOUT):
    """``(ftp, data connection, size or None)`` of the binary download of ``url``."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    ftp = ftplib.FTP(timeout=timeout)
    try:
        ftp.connect(host or parts.hostname, int(port or parts.port or 21))
        ftp.login(unquote(parts.username or ""), unquote(parts.password or ""))
        ftp.voidcmd("TYPE I")
        try:
            size = ftp.size(path)
        except ftplib.error_perm:
            size = None
        conn = ftp.transfercmd(f"RETR {path}")
    except ftplib.error_perm as exc:
        ftp.close()
        raise NotFound(f"file not found on the file server: {posixpath.basename(path)}") from exc
    except (OSError, ftplib.Error) as exc:
        ftp.close()
        raise Unavailable(f"file server unavailable: {exc}") from exc
    return ftp, conn, size


def chunks(ftp, conn):
    """The bytes of an open transfer, then the server's closing answer."""
    try:
        while True:
            data = conn.recv(CHUNK)
            if not data:
                break
            yield data
        conn.close()
        ftp.voidresp()
    finally:
        conn.close()
        ftp.close()


def handle_file(request, services, ftp_config, job_id, kind, key, timeout):
    """The streaming response of one published file."""
    job_id = parse_job_id(job_id)
    data = mesh.ask(services, "jobgetdata", "do", {"job_id": job_id}, timeout)
    url = file_url(data, kind, key, job_id)
    ftp, conn, size = open_transfer(url, ftp_config.get("host"), ftp_config.get("port"))
    name = posixpath.basename(unquote(urlsplit(url).path)) or key
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    unbuffered(request)
    response = Response(chunks(ftp, conn), mimetype=mimetype, direct_passthrough=True)
    if size is not None:
        response.headers["Content-Length"] = str(size)
    safe = name.replace('"', "").replace("\\", "")
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    log.info("Job<%s> %s %s: %s", job_id, kind, key, name)
    return response
