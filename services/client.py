"""The Python client of a Mirror mesh.

``Mirror`` wraps a standalone nameko ``ClusterRpcProxy``: one method per RPC,
each returning the value of a ``[0, value]`` answer or raising ``MirrorError``
with the server's message for a ``[-1, "message"]`` one.

The module functions (``submit_job``, ``get_job_status``, ``get_job_info``,
``stop_job``, ``wait_for_all_jobs`` and the ``graceful_shutdown_on_keyboard_interrupt``
decorator) follow the job submission API of seed 001 on a default client, built
from the configuration file (``--config`` style path, ``$MIRROR_CONFIG`` or
``config/mirror.yaml``) unless ``configure(...)`` sets another.
"""

import base64
import functools
import io
import logging
import math
import os
import shlex
import sys
import threading
import time
import warnings
import zipfile
from pathlib import Path

# nameko imports eventlet, which announces its own deprecation on import.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from nameko.exceptions import (  # noqa: E402
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
)
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from services.common.jobstates import FINAL as FINAL_STATES  # noqa: E402
from services.common.jobstates import STATES  # noqa: E402
from services.common.names import AGENT_SERVICES  # noqa: E402
from services.config import masked  # noqa: E402

log = logging.getLogger(__name__)

__all__ = [
    "FINAL_STATES",
    "STATES",
    "Mirror",
    "MirrorError",
    "configure",
    "get_client",
    "get_job_info",
    "get_job_status",
    "graceful_shutdown_on_keyboard_interrupt",
    "stop_job",
    "submit_job",
    "wait_for_all_jobs",
]

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost"

# Services named ``<base>_<rid>`` live on resource machine ``rid``.
_MACHINE_SERVICES = (*AGENT_SERVICES, "jobagent")


class MirrorError(Exception):
    """An RPC answered ``[-1, message]``, or the mesh could not be asked.

    ``str(error)`` is the server's message, unchanged; ``service`` and
    ``method`` name the call that failed.
    """

    def __init__(self, message, service=None, method=None):
        super().__init__(message)
        self.message = message
        self.service = service
        self.method = method


def _unknown_service(service):
    base, _, rid = service.rpartition("_")
    if base in _MACHINE_SERVICES and rid.isdigit():
        return f"resource machine {rid} does not answer (no {service} service is running)"
    return f"no {service} service is running on this broker and exchange"


def _encode(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(bytes(data)).decode("ascii")


def zip_directory(directory):
    """The zip (bytes) of every file under ``directory``, with relative names.

    Python's caches (``__pycache__``, ``*.pyc``) are left out.
    """
    directory = Path(directory)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory)
            if "__pycache__" in rel.parts or path.suffix == ".pyc":
                continue
            if path.is_file():
                archive.write(path, rel.as_posix())
    return buffer.getvalue()


class Mirror:
    """A client of one mesh: ``Mirror(amqp_uri, exchange="mirror_com", timeout=30)``.

    The connection opens on the first call and closes with ``close()`` (or at
    the end of a ``with`` block). One client may be shared by threads and green
    threads: calls go one at a time, since a standalone proxy is not safe for
    concurrent use.
    """

    def __init__(self, amqp_uri=None, exchange="mirror_com", timeout=30):
        self.amqp_uri = amqp_uri or DEFAULT_AMQP_URI
        self.exchange = exchange or "mirror_com"
        self.timeout = timeout
        self._lock = threading.RLock()
        self._proxy = None
        self._cluster = None

    @classmethod
    def from_config(cls, path=None, timeout=None):
        """A client for the mesh of a configuration file (``services.config.load_config``)."""
        from services.config import load_config

        config = load_config(path)
        if timeout is None:
            timeout = (config.get("RPC") or {}).get("timeout", 30)
        return cls(config["AMQP_URI"], config["rpc_exchange"], timeout=timeout)

    def clone(self):
        """A new client, with a connection of its own, to the same mesh."""
        return type(self)(self.amqp_uri, self.exchange, self.timeout)

    def __repr__(self):
        return f"Mirror({masked(self.amqp_uri)!r}, exchange={self.exchange!r})"

    # -- connection -----------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the connection (the next call opens a new one)."""
        with self._lock:
            self._drop()

    def _drop(self):
        proxy, self._proxy, self._cluster = self._proxy, None, None
        if proxy is not None:
            try:
                proxy.stop()
            except Exception:  # noqa: BLE001 - a broken connection is closed all the same
                log.debug("closing the RPC proxy failed", exc_info=True)

    def _connect(self):
        if self._cluster is None:
            config = {"AMQP_URI": self.amqp_uri, "rpc_exchange": self.exchange}
            proxy = ClusterRpcProxy(config, timeout=self.timeout)
            try:
                self._cluster = proxy.start()
            except Exception as exc:  # noqa: BLE001 - any failure to connect
                raise self._unreachable(exc) from exc
            self._proxy = proxy
        return self._cluster

    def _unreachable(self, exc, service=None, method=None):
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return MirrorError(
            f"cannot reach the RabbitMQ broker at {masked(self.amqp_uri)} ({reason})",
            service,
            method,
        )

    def call(self, service, method, **kwargs):
        """Call ``service.method(**kwargs)``; return the value or raise ``MirrorError``."""
        with self._lock:
            cluster = self._connect()
            try:
                answer = getattr(getattr(cluster, service), method)(**kwargs)
            except UnknownService:
                raise MirrorError(_unknown_service(service), service, method) from None
            except RpcTimeout:
                raise MirrorError(
                    f"{service}.{method} did not answer within {self.timeout} s", service, method
                ) from None
            except MethodNotFound:
                raise MirrorError(
                    f"the {service} service has no method {method} (is the mesh up to date?)",
                    service,
                    method,
                ) from None
            except RemoteError as exc:
                raise MirrorError(
                    f"{service}.{method}: {exc.exc_type}: {exc.value}", service, method
                ) from None
            except (OSError, ConnectionError) as exc:
                self._drop()
                raise self._unreachable(exc, service, method) from exc
            except KeyboardInterrupt:
                # The connection may be half way through a frame: start afresh next time.
                self._drop()
                raise
        if not isinstance(answer, list | tuple) or len(answer) != 2:
            raise MirrorError(
                f"{service}.{method} answered {answer!r}, not [code, value]", service, method
            )
        code, value = answer
        if code != 0:
            raise MirrorError(str(value), service, method)
        return value

    # -- projects and packages ------------------------------------------------------
    def new_project(self, name, description=""):
        """Create a project; return its ``p_id``."""
        return self.call("project", "new", name=name, description=description)

    def upload(self, p_id, name, content):
        """Store ``content`` (bytes, or text as UTF-8) as file ``name`` of project ``p_id``."""
        self.call("project", "upload", p_id=p_id, name=name, content=_encode(content))

    def upload_dir(self, p_id, directory):
        """Upload every file under ``directory`` (recursively, relative names); return the names."""
        directory = Path(directory)
        if not directory.is_dir():
            raise MirrorError(f"{directory} is not a directory", "project", "upload")
        names = []
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                name = path.relative_to(directory).as_posix()
                self.upload(p_id, name, path.read_bytes())
                names.append(name)
        return names

    def projects(self):
        return self.call("project", "list")

    def project_jobs(self, p_id):
        """Summaries of every job of project ``p_id`` (``project.getalljob``)."""
        return self.call("project", "getalljob", p_id=p_id)

    def add_package(self, path_or_bytes, name=None):
        """Register a calculation package: a zip file, a directory (zipped here) or zip bytes.

        ``name`` defaults to the file or directory name without its ``.zip``.
        Returns the package's ``c_id``.
        """
        if isinstance(path_or_bytes, bytes | bytearray | memoryview):
            data = bytes(path_or_bytes)
            name = name or "package"
        else:
            path = Path(path_or_bytes)
            if path.is_dir():
                data = zip_directory(path)
            else:
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise MirrorError(
                        f"cannot read {path}: {exc.strerror}", "calcpackage", "new"
                    ) from None
            name = name or (path.name[:-4] if path.name.endswith(".zip") else path.name)
        return self.call("calcpackage", "new", name=name, content=_encode(data))

    def packages(self):
        return self.call("calcpackage", "list")

    # -- jobs -----------------------------------------------------------------------
    def dispatch(self, p_id, c_id, para_name="para.xml", rid=None, tags=None):
        """One job per state of the project's parameter file; return the new job ids."""
        kwargs = {"p_id": p_id, "c_id": c_id, "para_name": para_name}
        if rid is not None:
            kwargs["rid"] = rid
        if tags:
            kwargs["tags"] = list(tags)
        return self.call("jobdispatch", "do", **kwargs)

    def submit(
        self,
        script,
        name="",
        ncpus=1,
        time_limit=None,
        environment=None,
        cwd=None,
        stdout=None,
        stderr=None,
        rid=None,
        tags=None,
        preferred=None,
        metadata=None,
        submission_id=None,
    ):
        """Run shell ``script`` as a one-step job; return its job id.

        ``time_limit`` is in minutes; ``preferred`` names a machine to use if it
        is online with room; the same ``submission_id`` always gives the same job.
        """
        kwargs = {"script": script, "name": name or "", "ncpus": ncpus}
        optional = {
            "time_limit": time_limit,
            "environment": dict(environment) if environment else None,
            "cwd": cwd,
            "stdout": stdout,
            "stderr": stderr,
            "rid": rid,
            "tags": list(tags) if tags else None,
            "preferred": preferred,
            "metadata": metadata,
            "submission_id": submission_id,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        return self.call("jobdispatch", "submit", **kwargs)

    def query(self, job_id):
        """The job record (``job.query``)."""
        return self.call("job", "query", job_id=job_id)

    def events(self, job_id):
        return self.call("job", "events", job_id=job_id)

    def jobs(self, state=None, rid=None, p_id=None, limit=100):
        """Job summaries, newest first; ``state`` may be a list or a comma-separated text."""
        if state is not None and not isinstance(state, str):
            state = ",".join(state)
        return self.call("job", "list", state=state, rid=rid, p_id=p_id, limit=limit)

    def getdata(self, job_id):
        """``{"process": {...}, "result": {...}}``: the job's progress and ``ftp://`` URLs."""
        return self.call("jobgetdata", "do", job_id=job_id)

    def getrid(self, job_id):
        return self.call("job", "getrid", job_id=job_id)

    def kill(self, job_id):
        """Stop a job in any state that is not final (``job.cancel``)."""
        try:
            self.call("job", "cancel", job_id=job_id)
        except MirrorError as exc:
            if not str(exc).startswith("the job service has no method cancel"):
                raise
            # A central from before job.cancel: the job's machine kills it.
            rid = self.getrid(job_id)
            self.call(f"jobkill_{rid}", "do", job_id=job_id)

    def delete(self, job_id, force=False):
        """Remove a job, its directory and its published files (``force`` kills it first)."""
        rid = self.getrid(job_id)
        self.call(f"jobdelete_{rid}", "do", job_id=job_id, force=int(bool(force)))

    def logs(self, job_id, step=None, offset_out=0, offset_err=0, max_bytes=65536):
        """A step's stdout and stderr from the given byte offsets.

        Answers ``{"step", "stdout", "stderr", "offset_out", "offset_err"}``; pass
        the returned offsets back to read what came since.
        """
        rid = self.getrid(job_id)
        return self.call(
            f"jobagent_{rid}",
            "logs",
            job_id=job_id,
            step=step,
            offset_out=offset_out,
            offset_err=offset_err,
            max_bytes=max_bytes,
        )

    def follow_logs(self, job_id, step=None, interval=0.5):
        """Yield each new piece of a job's output until the job ends.

        Without ``step`` it follows the job from step to step (every step that
        started, in order); each item is a ``logs`` answer with new text.
        """
        current, out, err = step, 0, 0
        while True:
            job = self.query(job_id)
            ended = job["state"] in FINAL_STATES
            if current is None:
                current = _first_started(job)
            if current is not None:
                while True:
                    chunk = self.logs(job_id, step=current, offset_out=out, offset_err=err)
                    if chunk["stdout"] or chunk["stderr"]:
                        yield chunk
                    if (chunk["offset_out"], chunk["offset_err"]) == (out, err):
                        break
                    out, err = chunk["offset_out"], chunk["offset_err"]
                following = None if step is not None else _next_started(job, current)
                if following is not None:
                    current, out, err = following, 0, 0
                    continue
            if ended:
                return
            time.sleep(interval)

    def machines(self):
        return self.call("machine", "list")

    def ruok(self, rid):
        """The health of resource machine ``rid``."""
        return self.call("machine", "ruok", rid=rid)

    def wait(self, ids, interval=1.0, timeout=None, on_update=None):
        """Wait until every job of ``ids`` (one id or several) is final.

        Returns their records in the order given. ``on_update(records)`` is
        called after each poll; ``TimeoutError`` after ``timeout`` seconds.
        """
        ids = [ids] if isinstance(ids, int | str) else list(ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            records = [self.query(job_id) for job_id in ids]
            if on_update is not None:
                on_update(records)
            if all(r["state"] in FINAL_STATES for r in records):
                return records
            if deadline is not None and time.monotonic() >= deadline:
                pending = [str(r["job_id"]) for r in records if r["state"] not in FINAL_STATES]
                raise TimeoutError(
                    f"timed out after {timeout} s waiting for job(s) {', '.join(pending)}"
                )
            pause = interval if deadline is None else min(interval, deadline - time.monotonic())
            time.sleep(max(pause, 0))


def _started(job):
    return [
        s["id"] for s in job.get("steps") or [] if s.get("start_time") or s["state"] != "PENDING"
    ]


def _first_started(job):
    started = _started(job)
    return started[0] if started else job.get("step")


def _next_started(job, current):
    started = _started(job)
    if current in started:
        index = started.index(current)
        return started[index + 1] if index + 1 < len(started) else None
    return None


# -- the seed-001 API on a default client ------------------------------------------------
_default = None
_default_lock = threading.Lock()
# The job lists of the decorated functions running now: submit_job adds to each.
_trackers = []
_trackers_lock = threading.Lock()

_INTERPRETERS = {
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    "sh",
    "bash",
    "zsh",
    "ksh",
    "dash",
    "perl",
    "ruby",
    "node",
    "Rscript",
    "julia",
    "tclsh",
    "lua",
    "php",
}
# Options of those interpreters that take the next word as their value.
_OPTION_VALUES = {"-W", "-X", "-O", "--rcfile", "--init-file", "-o"}
# Options after which the program is inline text or a module, not a script path.
_NO_SCRIPT = {"--eval", "--command", "-"}


def _interpreter(word):
    name = os.path.basename(word)
    if name in _INTERPRETERS:
        return True
    # python3.11, pypy3.10 ...
    return name.startswith(("python", "pypy")) and name.rstrip("0123456789.") in _INTERPRETERS


def check_entrypoint(entrypoint):
    """Refuse an entrypoint whose program or script is a relative path (``ValueError``).

    ``python /abs/script.py --arg x`` and ``/abs/bin/tool --arg x`` are taken,
    as are commands found on ``PATH`` (``sleep 60``); ``python script.py``,
    ``./run.sh`` and ``bin/tool`` are not. Arguments after the script are free.
    """
    if not isinstance(entrypoint, str) or not entrypoint.strip():
        raise ValueError("entrypoint must be a non-empty command string")
    try:
        words = shlex.split(entrypoint)
    except ValueError as exc:
        raise ValueError(f"entrypoint is not a valid command line: {exc}") from None
    # Leading VAR=value assignments and `env` are not the program.
    while words and ("=" in words[0] and not words[0].startswith(("/", ".", "="))):
        words.pop(0)
    if words and os.path.basename(words[0]) == "env":
        rest = [w for w in words[1:] if "=" not in w or w.startswith("-")]
        if rest and not rest[0].startswith("-"):
            words = rest
    if not words:
        raise ValueError("entrypoint names no program to run")
    program = words[0]
    if "/" in program and not os.path.isabs(program):
        raise ValueError(
            f"entrypoint must use absolute paths: the program {program!r} is a relative path "
            f"(use e.g. {os.path.join('/abs/path', os.path.basename(program))!r})"
        )
    if not _interpreter(program):
        return
    rest = iter(words[1:])
    for word in rest:
        if word in _NO_SCRIPT:
            return
        if word.startswith("-") and not word.startswith("--") and set(word[1:]) & set("cme"):
            # -c CODE, -m MODULE, -e CODE, alone or in a cluster (bash -lc, python -uc).
            return
        if word in _OPTION_VALUES:
            next(rest, None)
            continue
        if word.startswith("-"):
            continue
        if not os.path.isabs(word):
            raise ValueError(
                f"entrypoint must use absolute paths: the script {word!r} is a relative path "
                f"(use e.g. '{os.path.basename(program)} /abs/path/{os.path.basename(word)}')"
            )
        return


def configure(config_path=None, *, amqp_uri=None, exchange=None, timeout=None, client=None):
    """Set the client the module functions use, and return it.

    ``client`` as given; else a client for ``amqp_uri``/``exchange``; else one
    for the configuration file ``config_path`` (or ``$MIRROR_CONFIG``, or
    ``config/mirror.yaml``, or the embedded defaults).
    """
    global _default
    if client is None:
        if amqp_uri is not None:
            client = Mirror(amqp_uri, exchange or "mirror_com", timeout or 30)
        else:
            client = Mirror.from_config(config_path, timeout=timeout)
            if exchange:
                client.exchange = exchange
    with _default_lock:
        previous, _default = _default, client
    if previous is not None and previous is not client:
        previous.close()
    return client


def get_client():
    """The default client, configured from ``load_config()`` on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Mirror.from_config()
        return _default


def _runtime_env(runtime_env):
    environment, cwd = None, None
    if not runtime_env:
        return environment, cwd
    if not isinstance(runtime_env, dict):
        raise ValueError(
            "runtime_env must be a dict such as {'env_vars': {...}, 'working_dir': ...}"
        )
    env_vars = runtime_env.get("env_vars")
    if env_vars:
        if isinstance(env_vars, list | tuple):
            # The "NAME=value" list form of cluster configuration files.
            env_vars = dict(item.split("=", 1) for item in env_vars)
        environment = {str(k): str(v) for k, v in env_vars.items()}
    cwd = runtime_env.get("working_dir")
    if cwd is not None and not os.path.isabs(str(cwd)):
        raise ValueError(f"runtime_env working_dir must be an absolute path, got {cwd!r}")
    ignored = sorted(set(runtime_env) - {"env_vars", "working_dir"})
    if ignored:
        warnings.warn(
            f"runtime_env keys {', '.join(ignored)} are not supported by Mirror and are ignored "
            "(only env_vars and working_dir are)",
            stacklevel=3,
        )
    return environment, cwd


def _ncpus(resource_requirements):
    if not resource_requirements:
        return 1
    ignored = sorted(k for k, v in resource_requirements.items() if k != "CPU" and v)
    if ignored:
        warnings.warn(
            f"resource requirements {', '.join(ignored)} are not scheduled by Mirror "
            "(only CPU is) and are ignored",
            stacklevel=3,
        )
    cpus = resource_requirements.get("CPU", 1)
    try:
        cpus = float(cpus)
    except (TypeError, ValueError):
        raise ValueError(f"resource_requirements CPU must be a number, got {cpus!r}") from None
    if cpus <= 0:
        raise ValueError(f"resource_requirements CPU must be positive, got {cpus!r}")
    return max(1, math.ceil(cpus))


def submit_job(
    entrypoint,
    runtime_env=None,
    job_id=None,
    metadata=None,
    submission_id=None,
    preferred_cluster=None,
    resource_requirements=None,
    tags=None,
):
    """Run the shell command ``entrypoint`` as a job of the mesh; return the job id (int).

    Paths of the program and script in ``entrypoint`` must be absolute
    (``ValueError`` otherwise). ``runtime_env``: ``env_vars`` and
    ``working_dir``; ``job_id``: the job's name; ``preferred_cluster``: the
    name of the resource machine to prefer; ``resource_requirements``:
    ``{"CPU": n}`` cores; ``submission_id``: an idempotency key (the same key
    gives back the same job).
    """
    check_entrypoint(entrypoint)
    environment, cwd = _runtime_env(runtime_env)
    ncpus = _ncpus(resource_requirements)
    new_id = get_client().submit(
        entrypoint,
        name=job_id or "",
        ncpus=ncpus,
        environment=environment,
        cwd=cwd,
        tags=tags,
        preferred=preferred_cluster,
        metadata=metadata,
        submission_id=submission_id,
    )
    with _trackers_lock:
        for tracker in _trackers:
            tracker.append(new_id)
    log.info("submitted job %s: %s", new_id, entrypoint)
    return new_id


def get_job_status(job_id, cluster_name=None):
    """The job's state: QUEUED, PREPARING, READY, RUNNING, COMPLETED, FAILED or KILLED.

    ``cluster_name`` is accepted for seed compatibility and not needed: the
    mesh knows where each job runs.
    """
    return get_client().query(job_id)["state"]


def get_job_info(job_id, cluster_name=None):
    """The job's full record (``job.query``): state, steps, times, machine, error..."""
    return get_client().query(job_id)


def stop_job(job_id, cluster_name=None):
    """Stop a job; ``True`` if stopped, ``False`` if it could not be (already ended...)."""
    try:
        get_client().kill(job_id)
    except MirrorError as exc:
        log.warning("job %s not stopped: %s", job_id, exc)
        return False
    return True


def wait_for_all_jobs(submission_ids, check_interval=5, timeout=None):
    """Poll until every job is COMPLETED; return ``True``.

    Raises ``RuntimeError`` naming the job(s) and their error as soon as one is
    FAILED or KILLED, and ``TimeoutError`` after ``timeout`` seconds.
    """
    ids = [submission_ids] if isinstance(submission_ids, int | str) else list(submission_ids)
    client = get_client()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        records = [client.query(job_id) for job_id in ids]
        bad = [r for r in records if r["state"] in ("FAILED", "KILLED")]
        if bad:
            raise RuntimeError(
                "; ".join(
                    f"job {r['job_id']} {r['state']}: {r.get('error') or 'no reason given'}"
                    for r in bad
                )
            )
        if all(r["state"] == "COMPLETED" for r in records):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            pending = [
                f"{r['job_id']} ({r['state']})" for r in records if r["state"] != "COMPLETED"
            ]
            raise TimeoutError(
                f"timed out after {timeout} s waiting for job(s) {', '.join(pending)}"
            )
        pause = (
            check_interval if deadline is None else min(check_interval, deadline - time.monotonic())
        )
        time.sleep(max(pause, 0))


def graceful_shutdown_on_keyboard_interrupt(fn):
    """On Ctrl+C in ``fn``, stop every job ``fn`` submitted, then re-raise KeyboardInterrupt."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        submitted = []
        with _trackers_lock:
            _trackers.append(submitted)
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            _stop_submitted(submitted)
            raise
        finally:
            with _trackers_lock:
                _trackers.remove(submitted)

    return wrapper


def _stop_submitted(ids):
    if not ids:
        return
    print(
        f"interrupted: stopping {len(ids)} job(s) submitted here: {', '.join(map(str, ids))}",
        file=sys.stderr,
        flush=True,
    )
    # A fresh connection: the interrupted one may have been cut mid-call.
    with get_client().clone() as client:
        for job_id in ids:
            try:
                client.kill(job_id)
            except MirrorError as exc:
                log.info("job %s not stopped: %s", job_id, exc)
