"""``Mirror``: the Python client of a mesh, one method per RPC."""

import logging
import time
from pathlib import Path

from services.client.connection import MirrorError, RpcClient
from services.client.eventstream import EventStream, StreamUnavailable
from services.client.fetch import unpack_url
from services.client.projects import ProjectMethods, _encode, zip_directory  # noqa: F401
from services.client.sweeps import SweepMethods
from services.common.jobstates import FINAL as FINAL_STATES
from services.common.jobstates import PENDING

log = logging.getLogger("services.client")


class Mirror(ProjectMethods, SweepMethods, RpcClient):
    """A client of one mesh: ``Mirror(amqp_uri, exchange="mirror_com", timeout=30)``.

    Each method calls one RPC and returns its value (``MirrorError`` for a
    refusal); see ``RpcClient`` for the connection.
    """

    #: Seconds without an event before a waiting client looks at its jobs all the same.
    stream_quiet = 3.0

    # -- packages -------------------------------------------------------------------
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

    def package(self, c_id):
        """One package as ``packages`` lists it, with its ``version`` (``calcpackage.query``)."""
        return self.call("calcpackage", "query", c_id=c_id)

    def delete_package(self, c_id):
        """Delete a package and its zip (``calcpackage.delete``)."""
        return self.call("calcpackage", "delete", c_id=c_id)

    # -- jobs -----------------------------------------------------------------------
    def dispatch(self, p_id, c_id, para_name="para.xml", rid=None, tags=None):
        """One job per state of the project's parameter file; return the new job ids."""
        kwargs = {"p_id": p_id, "c_id": c_id, "para_name": para_name}
        if rid is not None:
            kwargs["rid"] = rid
        if tags:
            kwargs["tags"] = list(tags)
        return self.call("jobdispatch", "do", **kwargs)

    def check(self, p_id, c_id, para_name="para.xml"):
        """What dispatching the project with the package would refuse: states, names, problems."""
        return self.call("jobdispatch", "check", p_id=p_id, c_id=c_id, para_name=para_name)

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

    def events(self, job_id=None, /, **filters):
        """Live events (with filters only), or one job's recorded events (with its id).

        ``events(job=..., project=..., machine=..., state=..., sweep=...)``, each
        a value, a list or a comma list, answers an :class:`EventStream`: an
        iterator of event dicts from now on, read from the broker (close it, or
        use it in a ``with`` block); it raises :class:`StreamUnavailable` when
        the mesh publishes no events. ``events(job_id)`` answers the job's
        recorded events, oldest first (``job.events``).
        """
        if job_id is None and "job_id" in filters:
            job_id = filters.pop("job_id")
        if job_id is not None:
            return self.call("job", "events", job_id=job_id)
        return EventStream(self.amqp_uri, filters)

    def job_stream(self, ids):
        """An :class:`EventStream` of the jobs ``ids``, or None when the mesh has none."""
        try:
            return EventStream(self.amqp_uri, {"job": [str(i) for i in ids]})
        except StreamUnavailable as exc:
            log.info("polling: %s", exc)
            return None

    def jobs(
        self, state=None, rid=None, p_id=None, limit=100, name=None, submission_id=None, after=None
    ):
        """Job summaries, newest first; ``state`` may be a list or a comma-separated text.

        ``after`` (the last ``job_id`` of a page) gives the next page.
        """
        if state is not None and not isinstance(state, str):
            state = ",".join(state)
        page = {"after": after} if after is not None else {}
        return self.call(
            "job",
            "list",
            state=state,
            rid=rid,
            p_id=p_id,
            limit=limit,
            name=name,
            submission_id=submission_id,
            **page,
        )

    def getdata(self, job_id):
        """``{"process": {...}, "result": {...}}``: the job's progress and ``ftp://`` URLs."""
        return self.call("jobgetdata", "do", job_id=job_id)

    def get(self, job_id, dest):
        """Fetch the whole directory of an ended job (failed, killed or completed) into ``dest``.

        The job's machine packs it (refused over its ``AGENT.directory_cap``)
        and publishes it on the file server. Answers ``{"path", "files", "bytes"}``.
        """
        job = self.query(job_id)
        if job.get("rid") is None:
            # Never placed: no machine holds a directory (its agent words the rest).
            if job["state"] in FINAL_STATES:
                raise MirrorError(
                    f"job {job_id} has no directory to fetch: it {job['state']} before one was built"
                )
            raise MirrorError(
                f"job {job_id} is {job['state']}; its directory can be fetched once it has ended"
            )
        packed = self.call(f"jobagent_{job['rid']}", "pack", job_id=job_id)
        unpack_url(packed["url"], dest)
        return {"path": str(dest), "files": packed["files"], "bytes": packed["bytes"]}

    def getrid(self, job_id):
        return self.call("job", "getrid", job_id=job_id)

    def kill(self, job_id):
        """Stop a job in any state that is not final (``job.cancel``)."""
        try:
            self.call("job", "cancel", job_id=job_id)
        except MirrorError as exc:
            if not str(exc).startswith("the job service has no method cancel"):
                raise
            # A central without job.cancel: the job's machine kills it.
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

    def forget_machine(self, rid):
        """Remove a decommissioned resource machine (``machine.forget``, admins only)."""
        return self.call("machine", "forget", rid=rid)

    def ruok(self, rid):
        """The health of resource machine ``rid``."""
        return self.call("machine", "ruok", rid=rid)

    def wait(self, ids, interval=1.0, timeout=None, on_update=None):
        """Wait until every job of ``ids`` (one id or several) is final.

        Returns their records in the order given. ``on_update(records)`` is
        called after each look; ``TimeoutError`` after ``timeout`` seconds.
        The jobs are looked at again when an event of theirs arrives, and every
        :attr:`stream_quiet` seconds without one (every ``interval`` seconds
        when the mesh publishes no events).
        """
        ids = [ids] if isinstance(ids, int | str) else list(ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        stream = self.job_stream(ids)
        try:
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
                pause = interval if stream is None else self.stream_quiet
                if deadline is not None:
                    pause = max(min(pause, deadline - time.monotonic()), 0)
                if stream is None:
                    time.sleep(pause)
                else:
                    stream.settle(pause)
        finally:
            if stream is not None:
                stream.close()


def _started(job):
    return [s["id"] for s in job.get("steps") or [] if s.get("start_time") or s["state"] != PENDING]


def _first_started(job):
    started = _started(job)
    return started[0] if started else job.get("step")


def _next_started(job, current):
    started = _started(job)
    if current in started:
        index = started.index(current)
        return started[index + 1] if index + 1 < len(started) else None
    return None
