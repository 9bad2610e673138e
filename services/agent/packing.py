"""A job's whole directory, packed and published for its user: a failure to debug at home.

``jobagent_<rid>.pack`` packs the directory of an ended job as a tar.gz,
uploads it under the job's own directory on the file server
(``/jobs/<id>/directory/``, reached by the job's read-only FTP account) and
answers its URL. Directories over ``AGENT.directory_cap`` are refused with
their size.
"""

import logging
import os
import tarfile
import tempfile
from pathlib import Path

from eventlet import tpool

from services.common.errors import MirrorError
from services.common.jobstates import FINAL
from services.filestore import FileStoreError

log = logging.getLogger(__name__)

#: The default of ``AGENT.directory_cap``: 100 MiB.
DIRECTORY_CAP = 100 * 1024 * 1024


def human(size):
    """``size`` bytes in the largest binary unit it fills, for messages: ``4.0 KiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def directory_size(root):
    """``(bytes, files)`` under ``root``; links count as themselves, never followed."""
    total = count = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue  # gone meanwhile: it is not packed either
            count += 1
    return total, count


def pack_to(root, target):
    """Write ``root``'s tree to the tar.gz ``target``, names relative to ``root``."""
    with tarfile.open(target, "w:gz") as tar:
        for entry in sorted(Path(root).iterdir()):
            tar.add(entry, arcname=entry.name)


def pack(rt, job):
    """Pack and publish the directory of the ended ``job``: ``{"url", "bytes", "files"}``."""
    job_id, state = job["job_id"], job["state"]
    if state not in FINAL:
        raise MirrorError(
            f"job {job_id} is {state}; its directory can be fetched once it has ended"
        )
    path = job.get("path")
    if not path or not Path(path).is_dir():
        raise MirrorError(
            f"job {job_id} has no directory to fetch: it {state} before one was built"
        )
    size, count = directory_size(path)
    if size > rt.directory_cap:
        raise MirrorError(
            f"job {job_id}'s directory holds {human(size)}, over the "
            f"{human(rt.directory_cap)} a fetch may take (AGENT.directory_cap of "
            f"resource machine {rt.rid}); fetch its results, or copy it from {path}"
        )
    remote = f"/jobs/{job_id}/directory/job{job_id}.tar.gz"
    fd, packed = tempfile.mkstemp(
        prefix=f".pack-job{job_id}-", suffix=".tar.gz", dir=rt.workspace.root
    )
    os.close(fd)
    try:
        # Compressing takes a while: in a real thread, so heartbeats go on.
        tpool.execute(pack_to, path, packed)
        rt.files.upload(Path(packed), remote)
    except (OSError, FileStoreError) as exc:
        raise MirrorError(f"packing the directory of job {job_id} failed: {exc}") from exc
    finally:
        os.unlink(packed)
    log.info("Job<%s> directory packed: %d file(s), %d bytes", job_id, count, size)
    return {"url": rt.files.url(remote), "bytes": size, "files": count}
