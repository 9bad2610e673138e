"""Job directories on a resource machine, and a cache of packages and project files."""

import logging
import shutil
import threading
from pathlib import Path

from adapters.adapter import parse_adapter
from adapters.hooks import load_hooks
from adapters.safezip import extract_zip

log = logging.getLogger(__name__)


class Workspace:
    """The agent's work root: ``job<id>`` directories and ``.cache``."""

    def __init__(self, work_root, files):
        self.root = Path(work_root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cache = self.root / ".cache"
        self.files = files
        self._locks = {}
        self._guard = threading.Lock()
        self._adapters = {}
        self._hooks = {}

    def _lock(self, key):
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    # -- packages ----------------------------------------------------------
    def package_dir(self, package):
        """The package extracted once per machine (keyed by id and digest), then reused."""
        key = f"{package['c_id']}-{package['sha256'][:16]}"
        target = self.cache / "packages" / key
        with self._lock(key):
            if not (target / ".complete").exists():
                zip_path = self.cache / "packages" / f"{key}.zip"
                self.files.download(package["ftp_path"], zip_path)
                partial = target.with_name(key + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                extract_zip(zip_path, partial)
                shutil.rmtree(target, ignore_errors=True)
                partial.rename(target)
                (target / ".complete").touch()
                zip_path.unlink(missing_ok=True)
                log.info("CalcPackage<%s> cached at %s", package["c_id"], target)
        return target

    def adapter(self, package):
        key = (package["c_id"], package["sha256"])
        if key not in self._adapters:
            self._adapters[key] = parse_adapter(package["adapter_xml"].encode("utf-8"))
        return self._adapters[key]

    def hooks(self, package, adapter):
        """The package's hooks module, loaded once and isolated from other packages."""
        if not adapter.hooks:
            return None
        key = (package["c_id"], package["sha256"])
        if key not in self._hooks:
            path = self.package_dir(package) / adapter.hooks
            self._hooks[key] = load_hooks(path, f"{package['c_id']}_{package['sha256'][:12]}")
        return self._hooks[key]

    def project_file(self, p_id, entry):
        """A project file from the cache (by digest), downloaded at most once."""
        target = self.cache / "projects" / str(p_id) / entry["sha256"]
        with self._lock(str(target)):
            if not target.exists():
                self.files.download(entry["ftp_path"], target)
        return target

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


def copy_tree(source, target):
    """Copy a directory tree; real copies, since steps may rewrite files in place.

    Contents and permission bits only: timestamps and extended attributes
    cost system calls per file that no job needs.
    """
    shutil.copytree(source, target, dirs_exist_ok=True, symlinks=False, copy_function=shutil.copy)
