"""A job's packed directory, downloaded over FTP and unpacked safely (``Mirror.get``)."""

import ftplib
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from services.client.connection import MirrorError


def download(url, fileobj, timeout=60):
    """Write the file at ``ftp://user:password@host:port/path`` into ``fileobj``."""
    parts = urlsplit(url)
    if parts.scheme != "ftp":
        raise MirrorError(f"not an ftp:// URL: {parts.scheme}://{parts.hostname}{parts.path}")
    where = f"ftp://{parts.hostname}:{parts.port or 21}{parts.path}"
    ftp = ftplib.FTP()
    try:
        ftp.connect(parts.hostname, parts.port or 21, timeout=timeout)
        ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
        ftp.retrbinary(f"RETR {unquote(parts.path)}", fileobj.write)
    except (OSError, ftplib.Error) as exc:
        raise MirrorError(f"cannot download {where}: {exc}") from exc
    finally:
        ftp.close()


def unpack_url(url, dest):
    """Download the tar.gz at ``url`` and unpack it into ``dest``; the names unpacked."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as fh:
        download(url, fh)
        fh.seek(0)
        try:
            with tarfile.open(fileobj=fh, mode="r:gz") as tar:
                # The "data" filter refuses absolute names, links out of dest and devices.
                tar.extractall(dest, filter="data")
                return [m.name for m in tar.getmembers() if m.isfile()]
        except (tarfile.TarError, OSError) as exc:
            raise MirrorError(f"cannot unpack the job directory into {dest}: {exc}") from exc
