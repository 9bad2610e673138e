"""Job directories on a resource machine, and a cache of packages and project files."""

import hashlib
import logging
import os
import re
import shutil
import stat
import threading
from pathlib import Path

from adapters.adapter import parse_adapter
from adapters.safezip import extract_zip
from services.common.errors import MirrorError
from services.config import ConfigError

log = logging.getLogger(__name__)

# Marks a cached package as wholly extracted; not part of the package.
COMPLETE = ".complete"

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([KMGT])(i)?)?B?", re.I)


def parse_size(value, what):
    """Bytes of ``value``: a number of bytes, or text such as ``"1GiB"`` (1024s) or ``"500MB"``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return int(value)
    match = _SIZE.fullmatch(str(value).strip())
    if isinstance(value, bool) or match is None:
        raise ConfigError(f"{what} must be a size such as 1GiB or a number of bytes, got {value!r}")
    prefix, base = (match.group(2) or "").upper(), 1024 if match.group(3) else 1000
    return int(float(match.group(1)) * base ** ("KMGT".index(prefix) + 1 if prefix else 0))


def human(size):
    """``size`` bytes as text in binary units (``"812.3 MiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{size} B"
        size /= 1024
    return None


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path, expected, what):
    """Refuse a download whose sha256 is not ``expected`` (the file is removed)."""
    actual = sha256_of(path)
    if actual != expected:
        Path(path).unlink(missing_ok=True)
        raise MirrorError(f"{what} is corrupt after download: sha256 {actual}, expected {expected}")


class Workspace:
    """The agent's work root: ``job<id>`` directories and ``.cache``."""

    def __init__(self, work_root, files, min_free=0):
        self.root = Path(work_root)
        self.min_free = min_free
        self.root.mkdir(parents=True, exist_ok=True)
        self.cache = self.root / ".cache"
        self.files = files
        self._locks = {}
        self._guard = threading.Lock()
        self._adapters = {}
        self._trees = {}

    def _lock(self, key):
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    # -- packages ----------------------------------------------------------
    def package_dir(self, package):
        """The package extracted once per machine (keyed by id and digest), then reused."""
        key = f"{package['c_id']}-{package['sha256'][:16]}"
        target = self.cache / "packages" / key
        with self._lock(key):
            if not (target / COMPLETE).exists():
                zip_path = self.cache / "packages" / f"{key}.zip"
                self.files.download(package["ftp_path"], zip_path)
                verify(
                    zip_path,
                    package["sha256"],
                    f"package {package['c_id']} ({package['ftp_path']})",
                )
                partial = target.with_name(key + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                extract_zip(zip_path, partial)
                shutil.rmtree(target, ignore_errors=True)
                partial.rename(target)
                (target / COMPLETE).touch()
                zip_path.unlink(missing_ok=True)
                log.info("CalcPackage<%s> cached at %s", package["c_id"], target)
        return target

    def package_tree(self, package):
        """``(directory, tree, template tree)`` of the cached package, listed once (`tree_of`)."""
        target = self.package_dir(package)
        if target not in self._trees:
            tree = [e for e in tree_of(target) if e[0] != Path(COMPLETE)]
            template = [
                (rel.relative_to("template"), *rest)
                for rel, *rest in tree
                if rel.parts[0] == "template" and len(rel.parts) > 1
            ]
            self._trees[target] = (tree, template)
        return (target, *self._trees[target])

    def adapter(self, package):
        key = (package["c_id"], package["sha256"])
        if key not in self._adapters:
            self._adapters[key] = parse_adapter(package["adapter_xml"].encode("utf-8"))
        return self._adapters[key]

    def project_file(self, p_id, entry):
        """A project file from the cache (by digest), downloaded at most once."""
        target = self.cache / "projects" / str(p_id) / entry["sha256"]
        with self._lock(str(target)):
            if not target.exists():
                self.files.download(entry["ftp_path"], target)
                verify(
                    target, entry["sha256"], f"project file {entry['name']} ({entry['ftp_path']})"
                )
        return target

    def check_free(self, job_id):
        """Refuse a new job directory while the work root has less free space than the floor."""
        if not self.min_free:
            return
        free = shutil.disk_usage(self.root).free
        if free < self.min_free:
            raise MirrorError(
                f"directory build of job {job_id} refused: the work root {self.root} has "
                f"{human(free)} free, below the floor AGENT.min_free of {human(self.min_free)}"
            )

    # -- job directories -----------------------------------------------------
    def new_job_dir(self, job_id):
        """A fresh directory for a job; earlier ones are kept (``force=1``)."""
        base = self.root / f"job{job_id}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = self.root / f"job{job_id}.{n}"
        path.mkdir(parents=True)
        return path

    def job_dirs(self, job_id):
        return sorted(self.root.glob(f"job{job_id}")) + sorted(self.root.glob(f"job{job_id}.*"))


def tree_of(root):
    """``[(relative path, is a directory, mode, size)]`` of a tree, parents before children."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in dirnames + sorted(filenames):
            path = base / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                raise OSError(f"{path} is a symbolic link; a package holds none")
            rel = path.relative_to(root)
            entries.append(
                (rel, stat.S_ISDIR(info.st_mode), stat.S_IMODE(info.st_mode), info.st_size)
            )
    return entries


def copy_tree(source, target, entries=None):
    """Copy a directory tree into ``target`` (created if missing); real copies, modes kept.

    Real copies, since steps may rewrite files in place. ``entries`` is the
    tree as `tree_of` lists it, for a source read once and copied often (a
    cached package): then each file costs an open, a sendfile and a close,
    without the stat, seek and attribute calls of `shutil.copytree`.
    """
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for rel, is_dir, mode, size in entries if entries is not None else tree_of(source):
        if is_dir:
            (target / rel).mkdir(exist_ok=True)
            os.chmod(target / rel, mode)
            continue
        src = os.open(source / rel, os.O_RDONLY)
        try:
            dst = os.open(target / rel, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            try:
                os.fchmod(dst, mode)
                sent = 0
                while sent < size:
                    done = os.sendfile(dst, src, sent, size - sent)
                    if done == 0:
                        break
                    sent += done
            finally:
                os.close(dst)
        finally:
            os.close(src)
