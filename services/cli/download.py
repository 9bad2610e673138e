"""``mirror get``: download a job's results from the file server over FTP."""

import ftplib
import posixpath
from pathlib import Path
from urllib.parse import unquote, urlsplit

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from services.cli.errors import CommandError
from services.common.jobstates import FINAL


def get_results(client, args, out):
    """Download every result URL of the job into ``DEST/<key>/...``, one progress bar per file.

    With ``--all``, the job's whole directory into ``DEST`` instead.
    """
    if args.all:
        got = client.get(args.job_id, args.dest)
        out.print(
            f"job {args.job_id}: directory, {got['files']} file(s), {got['bytes']} bytes"
            f" in {args.dest}",
            markup=False,
        )
        return
    job = client.query(args.job_id)
    results = client.getdata(args.job_id).get("result") or {}
    if not results:
        hint = "; mirror get --all fetches its directory" if job["state"] in FINAL else ""
        raise CommandError(f"job {args.job_id} has no results (it is {job['state']}){hint}")
    dest = Path(args.dest)
    files, total = download_all(plan_downloads(results, dest), dest, out)
    out.print(f"job {args.job_id}: {files} file(s), {total} bytes in {dest}", markup=False)


def plan_downloads(results, directory):
    """``(url, remote, local, size)`` of every file of ``{key: url}``, under ``directory/<key>/``."""
    plan = []
    for key, url in sorted(results.items()):
        with FtpSource(url) as source:
            plan += [
                (url, remote, directory / key / rel, size) for remote, rel, size in source.files()
            ]
    return plan


def download_all(plan, dest, out):
    """Download a :func:`plan_downloads` plan, one progress bar per file; ``(files, bytes)``."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=out,
        auto_refresh=out.is_terminal,
    )
    total = 0
    with progress:
        for url, remote, local, size in plan:
            task = progress.add_task(str(local.relative_to(dest)), total=size)
            with FtpSource(url) as source:
                count = source.download(remote, local, lambda n, t=task: progress.advance(t, n))
            progress.update(task, total=count, completed=count)
            total += count
    return len(plan), total


class FtpSource:
    """One ``ftp://user:password@host:port/path`` URL: a file, or a directory to walk."""

    def __init__(self, url):
        parts = urlsplit(url)
        if parts.scheme != "ftp":
            raise CommandError(f"not an ftp:// URL: {url}")
        self.url = url
        self.path = unquote(parts.path) or "/"
        try:
            self.ftp = ftplib.FTP()
            self.ftp.connect(parts.hostname, parts.port or 21, timeout=30)
            self.ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
            self.ftp.voidcmd("TYPE I")
        except (OSError, ftplib.Error) as exc:
            raise CommandError(f"cannot download {self.safe_url()}: {exc}") from None

    def safe_url(self):
        parts = urlsplit(self.url)
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return f"ftp://{host}{parts.path}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.ftp.quit()
        except (OSError, ftplib.Error):
            self.ftp.close()

    def is_dir(self, path):
        try:
            self.ftp.cwd(path)
        except ftplib.error_perm:
            return False
        return True

    def files(self):
        """``(remote path, local relative path, size or None)`` of every file of the URL."""
        try:
            if not self.is_dir(self.path):
                return [(self.path, Path(posixpath.basename(self.path)), self.size(self.path))]
            top = posixpath.basename(self.path.rstrip("/")) or "result"
            return list(self.walk(self.path, Path(top)))
        except (OSError, ftplib.Error) as exc:
            raise CommandError(f"cannot list {self.safe_url()}: {exc}") from None

    def walk(self, remote, local):
        for name, facts in sorted(self.ftp.mlsd(remote, facts=["type", "size"])):
            if name in (".", "..") or "/" in name or facts.get("type") in ("cdir", "pdir"):
                continue
            child = posixpath.join(remote, name)
            if facts.get("type") == "dir":
                yield from self.walk(child, local / name)
            elif facts.get("type") == "file":
                size = facts.get("size")
                yield child, local / name, int(size) if size is not None else None

    def read_small(self, limit):
        """The bytes of the URL's file if it is a file of at most ``limit`` bytes, else None."""
        try:
            if self.is_dir(self.path):
                return None
            size = self.size(self.path)
            if size is None or size > limit:
                return None
            chunks = []
            self.ftp.retrbinary(f"RETR {self.path}", chunks.append)
        except (OSError, ftplib.Error) as exc:
            raise CommandError(f"cannot download {self.safe_url()}: {exc}") from None
        return b"".join(chunks)

    def size(self, path):
        try:
            return self.ftp.size(path)
        except ftplib.error_perm:
            return None

    def download(self, remote, local, advance):
        """Fetch ``remote`` into ``local`` (atomically); return the byte count."""
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".part")
        count = 0

        def write(block):
            nonlocal count
            fh.write(block)
            count += len(block)
            advance(len(block))

        try:
            with open(partial, "wb") as fh:
                self.ftp.retrbinary(f"RETR {remote}", write)
        except (OSError, ftplib.Error) as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"cannot download {self.safe_url()}: {exc}") from None
        partial.replace(local)
        return count
