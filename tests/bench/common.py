"""What every benchmark shares: the run context, meshes with full clean-up, small helpers."""

import io
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import warnings
import zipfile
from pathlib import Path

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import psutil  # noqa: E402

from tests.mesh import Mesh, create_pg_database, drop_pg_database  # noqa: E402

BROKER = "amqp://guest:guest@127.0.0.1:5672"
FINAL = ("COMPLETED", "FAILED", "KILLED")
NOT_FINAL = "QUEUED,PREPARING,READY,RUNNING"


class Cancelled(Exception):
    """The driver gave up on the benchmark (time limit or Ctrl+C)."""


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rabbitmqctl(*args, timeout=60):
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=timeout
    )
    return done.stdout


def queue_depths(vhost):
    """``{queue name: ready messages}`` of ``vhost``."""
    out = rabbitmqctl("list_queues", "-p", vhost, "name", "messages", "--no-table-headers")
    depths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            depths[parts[0]] = int(parts[1])
    return depths


# -- packages and parameter files ----------------------------------------------------------
def para_xml(multistate=None, mode="zip", ncpus=1, single=None):
    """A para.xml: ``multistate`` maps a name to its list of values (type int)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<Para states="{mode}">']
    lines.append(f'  <Param name="NCPUS" type="int">{ncpus}</Param>')
    for name, value in (single or {}).items():
        lines.append(f'  <Param name="{name}" type="int">{value}</Param>')
    for name, values in (multistate or {}).items():
        joined = ";".join(str(v) for v in values)
        lines.append(f'  <Param name="{name}" type="int" multistate="1">{joined}</Param>')
    lines.append("</Para>")
    return ("\n".join(lines) + "\n").encode()


def make_zip(files):
    """A zip from ``{path: text or bytes}``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def percentile(values, q):
    """The ``q`` quantile (0..1) of ``values``, linear between ranks; None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    k = (len(ordered) - 1) * q
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


# -- a mesh that leaves nothing behind ---------------------------------------------------------
class BenchMesh(Mesh):
    """``tests.mesh.Mesh`` plus the clean-up a benchmark needs.

    Step processes run in their own sessions (they outlive an agent on
    purpose), so stopping a process group is not enough: every descendant
    seen before the stop is killed after it.
    """

    def __init__(self, tmp, amqp_uri, db_url=None, **overrides):
        Path(tmp).mkdir(parents=True, exist_ok=True)
        super().__init__(tmp, amqp_uri, db_url, **overrides)
        self.cache = {}

    def pid(self, name):
        return self.procs[name].pid

    def descendants(self):
        found = []
        for proc in list(self.procs.values()):
            try:
                found += psutil.Process(proc.pid).children(recursive=True)
            except psutil.Error:
                pass
        return found

    @property
    def vhost_in_use(self):
        """The vhost named by the mesh's own ``AMQP_URI``."""
        return urllib.parse.unquote(urllib.parse.urlsplit(self.config["AMQP_URI"]).path[1:])

    def close(self):
        leftovers = self.descendants()
        # Agents first: an agent whose central services are gone waits on its calls.
        for name in [n for n in self.procs if n.startswith("agent")]:
            self._stop_timed(name)
        try:
            super().close()
        except Exception as exc:  # noqa: BLE001 - a broken proxy must not stop the clean-up
            log(f"closing the mesh: {exc!r}")
        self._proxy = None
        for name in list(self.procs):
            self._stop_timed(name)
        leftovers += [p for p in self.descendants() if p not in leftovers]
        for proc in leftovers:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(leftovers, timeout=5)

    def _stop_timed(self, name):
        t0 = time.monotonic()
        try:
            self.stop(name)
        except Exception as exc:  # noqa: BLE001
            log(f"stopping {name} failed: {exc!r}")
        if time.monotonic() - t0 > 5:
            log(f"{name} took {time.monotonic() - t0:.1f}s to stop on SIGTERM")

    def count(self, p_id, state, limit=100000):
        return len(self.ok("job", "list", p_id=p_id, state=state, limit=limit))

    def trivial_c_id(self):
        """The bundled ``trivial`` package, registered once per mesh."""
        if "trivial" not in self.cache:
            from adapters.bundled import package_zip

            self.cache["trivial"] = self.add_package("trivial", package_zip("trivial"))
        return self.cache["trivial"]


# -- the run context -----------------------------------------------------------------------
class Context:
    """Settings of the run, the meshes, vhosts, databases and processes to clean up."""

    def __init__(self, args, tmp):
        self.args = args
        self.tmp = Path(tmp)
        self.cores = os.cpu_count() or 1
        self.slots = args.slots or self.cores
        self.vhosts = []
        self.databases = []
        self.meshes = []
        self.children = []
        self._shared = None
        self._closing = threading.RLock()
        self.cancel = threading.Event()

    # -- cancellation -------------------------------------------------------------
    def check(self):
        if self.cancel.is_set():
            raise Cancelled("cancelled")

    def sleep(self, seconds):
        if self.cancel.wait(seconds):
            raise Cancelled("cancelled")

    def wait(self, predicate, timeout, interval=0.1, what="condition"):
        """Poll ``predicate`` until truthy; raise TimeoutError naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            self.sleep(interval)

    # -- resources -------------------------------------------------------------------
    def new_vhost(self):
        name = f"mirror-bench-{uuid.uuid4().hex[:8]}"
        rabbitmqctl("add_vhost", name)
        self.vhosts.append(name)
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return name

    def new_db_url(self):
        """None (the embedded SQLite file of the mesh) or a fresh PostgreSQL database."""
        if not self.args.postgres:
            return None
        name, url = create_pg_database()
        self.databases.append(name)
        return url

    def make_mesh(self, label, db_url=None, **overrides):
        """A mesh on its own vhost and database (``db_url``, or the run's kind; nothing started yet)."""
        vhost = self.new_vhost()
        tmp = self.tmp / f"{label}-{len(self.meshes)}"
        mesh = BenchMesh(tmp, f"{BROKER}/{vhost}", db_url or self.new_db_url(), **overrides)
        # tests.mesh.Mesh may move to a vhost of its own; use (and remove) that one.
        mesh.vhost = mesh.vhost_in_use
        if mesh.vhost != vhost:
            self.vhosts.append(mesh.vhost)
        self.meshes.append(mesh)
        log(f"mesh {label}: vhost {mesh.vhost}, logs in {tmp}")
        return mesh

    def shared(self):
        """The mesh of B1-B4: core plus agent 1 in autorun with ``slots`` cores."""
        if self._shared is None:
            mesh = self.make_mesh("shared")
            try:
                t0 = time.monotonic()
                mesh.start_core()
                mesh.start_agent(1, autorun=True, slots=self.slots)
                log(f"shared mesh up in {time.monotonic() - t0:.1f}s (agent 1, {self.slots} slots)")
            except BaseException:
                self.close_mesh(mesh)
                raise
            self._shared = mesh
        return self._shared

    def close_mesh(self, mesh):
        # A benchmark thread and the driver (on Ctrl+C) may both get here.
        with self._closing:
            if mesh is self._shared:
                self._shared = None
            if mesh not in self.meshes:
                return
            self.meshes.remove(mesh)
            mesh.close()

    def close_shared(self):
        if self._shared is not None:
            self.close_mesh(self._shared)

    def popen(self, cmd, **kwargs):
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        self.children.append(proc)
        return proc

    def kill_children(self):
        for proc in self.children:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait()
        self.children.clear()

    def cleanup(self):
        self.kill_children()
        for mesh in list(self.meshes):
            try:
                self.close_mesh(mesh)
            except Exception as exc:  # noqa: BLE001
                log(f"closing a mesh failed: {exc!r}")
        try:
            existing = set(rabbitmqctl("list_vhosts", "name", "--no-table-headers").split())
        except Exception:  # noqa: BLE001
            existing = set(self.vhosts)
        for vhost in self.vhosts:
            if vhost not in existing:
                continue
            try:
                rabbitmqctl("delete_vhost", vhost)
            except Exception as exc:  # noqa: BLE001
                log(f"deleting vhost {vhost} failed: {exc!r}")
        self.vhosts.clear()
        for name in self.databases:
            try:
                drop_pg_database(name)
            except Exception as exc:  # noqa: BLE001
                log(f"dropping database {name} failed: {exc!r}")
        self.databases.clear()
