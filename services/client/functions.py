"""The job submission API of seed 001 as module functions.

``initialize_scheduler_environment`` reads a cluster file (``clusters.yaml``,
see ``clusters.py``) and connects to the mesh it names; without it, the first
seed function looks for one in the default places and raises ``RuntimeError``
when there is no configuration anywhere. ``submit_job`` answers a submission id;
every other function takes that id or a Mirror job id.
"""

import functools
import logging
import signal
import sys
import threading
import time

from services.client.clusters import Settings, default_settings, has_mesh, read_clusters
from services.client.connection import MirrorError
from services.client.entrypoint import check_entrypoint
from services.client.mirror import Mirror
from services.client.scheduler import UNKNOWN, Scheduler, same_submission, seed_fields, seed_status
from services.common.jobstates import FINAL

log = logging.getLogger("services.client")

_default = None
_default_lock = threading.Lock()
# The submissions of the decorated functions running now: submit_job adds to each.
_trackers = []
_trackers_lock = threading.Lock()

NOT_CONFIGURED = (
    "the scheduler is not initialized and no configuration was found: call "
    "initialize_scheduler_environment(config_file_path='clusters.yaml'), or put a clusters.yaml "
    "in the working directory, or set $MIRROR_CLUSTERS or $MIRROR_CONFIG"
)


def _install(scheduler):
    global _default
    with _default_lock:
        previous, _default = _default, scheduler
    if previous is not None and previous.client is not scheduler.client:
        previous.close()
    return scheduler


def _client_for(settings):
    if settings.amqp_uri:
        return Mirror(settings.amqp_uri, settings.exchange or "mirror_com", settings.timeout or 30)
    far = [c.mesh for c in settings.clusters.values() if c.mesh]
    if not has_mesh(settings) and far:
        # Every cluster is on a mesh of its own: the first one serves as the main mesh.
        return Mirror(*far[0], timeout=settings.timeout or 30)
    if not has_mesh(settings):
        raise RuntimeError(
            f"{settings.source} names no mesh: add `mirror: {{config: mirror.yaml}}` (or "
            "AMQP_URI) to it, or set $MIRROR_CONFIG"
        )
    client = Mirror.from_config(settings.mirror_config, timeout=settings.timeout)
    if settings.exchange:
        client.exchange = settings.exchange
    return client


def initialize_scheduler_environment(config_file_path=None):
    """Read the cluster file (default places without a path), connect; answer the scheduler."""
    settings = read_clusters(config_file_path) if config_file_path else default_settings()
    if settings is None:
        raise RuntimeError(NOT_CONFIGURED)
    scheduler = _install(Scheduler(_client_for(settings), settings))
    log.info("scheduler initialized from %s: %s", settings.source, scheduler)
    return scheduler


def configure(config_path=None, *, amqp_uri=None, exchange=None, timeout=None, client=None):
    """Use a mesh without clusters: ``client``, ``amqp_uri`` or a Mirror config file.

    Answers the ``Mirror`` client the seed functions use.
    """
    if client is None:
        settings = Settings(
            source=str(config_path or "configure()"),
            clusters={},
            mirror_config=config_path,
            amqp_uri=amqp_uri,
            exchange=exchange,
            timeout=timeout,
        )
        client = _client_for(settings)
    return _install(Scheduler(client, Settings(source="configure()", clusters={}))).client


def get_unified_scheduler():
    """The scheduler of the seed functions, initialized from the default places on first use."""
    with _default_lock:
        if _default is not None:
            return _default
    return initialize_scheduler_environment()


def get_client():
    """The ``Mirror`` client of the seed functions."""
    return get_unified_scheduler().client


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
    """Run the shell command ``entrypoint`` as a job; answer its submission id (a string).

    ``ValueError`` for a relative program or script path; ``RuntimeError`` when
    no machine has the CPUs asked for, when ``job_id`` names another
    submission of this user, or when ``submission_id`` was used for another
    entrypoint (the same entrypoint answers the same submission).
    """
    check_entrypoint(entrypoint)
    scheduler = get_unified_scheduler()
    kwargs = scheduler.prepare(
        entrypoint,
        runtime_env=runtime_env,
        job_id=job_id,
        metadata=metadata,
        submission_id=submission_id,
        preferred_cluster=preferred_cluster,
        resource_requirements=resource_requirements,
        tags=tags,
    )
    entry = {"kwargs": kwargs, "mirror_id": None}
    # Tracked before anything is sent: a Ctrl+C in the call still finds it.
    with _trackers_lock:
        for tracker in _trackers:
            tracker.append(entry)
    try:
        entry["mirror_id"] = scheduler.send(kwargs)
    except RuntimeError:
        _untrack(entry)
        raise
    log.info(
        "Job<%s> submitted as %s (%s): %s",
        entry["mirror_id"],
        kwargs["submission_id"],
        kwargs["name"],
        entrypoint,
    )
    return kwargs["submission_id"]


def _untrack(entry):
    with _trackers_lock:
        for tracker in _trackers:
            if entry in tracker:
                tracker.remove(entry)


def get_job_status(submission_id, cluster_name=None):
    """PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED, or UNKNOWN for an id no job has.

    ``cluster_name`` is accepted for the seed's sake: the mesh knows where each job runs.
    """
    record = get_unified_scheduler().record(submission_id)
    return UNKNOWN if record is None else seed_status(record["state"])


def get_job_info(submission_id, cluster_name=None):
    """The job's details in the seed's terms, with its ``logs``; None for an unknown id.

    ``logs`` is the job's stdout followed by its stderr (also apart as
    ``stdout`` and ``stderr``); ``mirror`` is the full ``job.query`` record.
    """
    scheduler = get_unified_scheduler()
    found = scheduler.located_record(submission_id)
    if found is None:
        return None
    client, record = found
    fields = seed_fields(record)
    stdout, stderr = scheduler.logs(record["job_id"], client)
    metadata = {k: v for k, v in (record.get("metadata") or {}).items() if k != "seed001"}
    return {
        "submission_id": record.get("submission_id"),
        "job_id": fields.get("job_id") or record.get("name"),
        "mirror_job_id": record["job_id"],
        "status": seed_status(record["state"]),
        "state": record["state"],
        "entrypoint": fields.get("entrypoint") or (record.get("params") or {}).get("SCRIPT"),
        "cluster": fields.get("cluster"),
        "rid": record.get("rid"),
        "tags": fields.get("tags", []),
        "metadata": metadata,
        "message": record.get("error"),
        "submit_time": record.get("submit_time"),
        "start_time": record.get("start_time"),
        "end_time": record.get("end_time"),
        "logs": stdout + stderr,
        "stdout": stdout,
        "stderr": stderr,
        "mirror": record,
    }


def stop_job(submission_id, cluster_name=None):
    """Stop a job; ``True`` if stopped, ``False`` if it cannot be (ended, unknown)."""
    scheduler = get_unified_scheduler()
    found = scheduler.locate(submission_id)
    if found is None:
        log.warning("submission %s not stopped: no such job", submission_id)
        return False
    client, mirror_id = found
    try:
        client.kill(mirror_id)
    except MirrorError as exc:
        log.warning("Job<%s> not stopped: %s", mirror_id, exc)
        return False
    return True


def wait_for_all_jobs(submission_ids, check_interval=5, timeout=None):
    """Wait until every job SUCCEEDED; return ``True``.

    The jobs are looked at again as soon as an event of theirs arrives, and at
    least every ``check_interval`` seconds (polling when the mesh publishes no
    events). ``RuntimeError`` naming the job(s) and their error as soon as one
    FAILED or was STOPPED (or an id names no job); ``TimeoutError`` after
    ``timeout`` s.
    """
    ids = [submission_ids] if isinstance(submission_ids, int | str) else list(submission_ids)
    scheduler = get_unified_scheduler()
    deadline = None if timeout is None else time.monotonic() + timeout
    # One event stream, on the mesh holding most of the jobs; the others are polled.
    by_client = {}
    for found in filter(None, (scheduler.locate(i) for i in ids)):
        by_client.setdefault(found[0], []).append(found[1])
    known = max(by_client.items(), key=lambda item: len(item[1]), default=None)
    stream = known[0].job_stream(known[1]) if known else None
    try:
        return _wait_all(scheduler, ids, stream, check_interval, timeout, deadline)
    finally:
        if stream is not None:
            stream.close()


def _wait_all(scheduler, ids, stream, check_interval, timeout, deadline):
    while True:
        records = [(i, scheduler.record(i)) for i in ids]
        unknown = [str(i) for i, r in records if r is None]
        if unknown:
            raise RuntimeError(f"no job has the id(s) {', '.join(unknown)}")
        bad = [(i, r) for i, r in records if r["state"] in FINAL and r["state"] != "COMPLETED"]
        if bad:
            raise RuntimeError(
                "; ".join(
                    f"job {i} {seed_status(r['state'])}: {r.get('error') or 'no reason given'}"
                    for i, r in bad
                )
            )
        if all(r["state"] == "COMPLETED" for _, r in records):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            pending = [
                f"{i} ({seed_status(r['state'])})" for i, r in records if r["state"] != "COMPLETED"
            ]
            raise TimeoutError(
                f"timed out after {timeout} s waiting for job(s) {', '.join(pending)}"
            )
        pause = (
            check_interval if deadline is None else min(check_interval, deadline - time.monotonic())
        )
        if stream is not None:
            stream.settle(max(pause, 0))
        else:
            time.sleep(max(pause, 0))


def graceful_shutdown_on_keyboard_interrupt(fn):
    """On Ctrl+C in ``fn``, stop every job ``fn`` submitted, then re-raise KeyboardInterrupt.

    A submission whose call was cut by the interrupt is sent again with its
    submission id (central answers the job it made, or makes it now) and
    stopped too; the clean-up runs on a fresh connection, every call bounded
    by the RPC timeout, with further Ctrl+C held off until it is done.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        submitted = []
        with _trackers_lock:
            _trackers.append(submitted)
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            with _interrupts_held():
                _stop_submitted(list(submitted))
            raise
        finally:
            with _trackers_lock:
                _trackers.remove(submitted)

    return wrapper


class _interrupts_held:
    """Hold off SIGINT (main thread only) while a clean-up runs; re-deliver nothing."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._note)
        return self

    def _note(self, signum, frame):
        print("interrupted again: still stopping jobs", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _stop_submitted(entries):
    if not entries:
        return
    scheduler = _default
    if scheduler is None:
        return
    names = [e["kwargs"]["submission_id"] for e in entries]
    print(
        f"interrupted: stopping {len(entries)} job(s) submitted here: {', '.join(names)}",
        file=sys.stderr,
        flush=True,
    )
    by_client = {}
    for entry in entries:
        by_client.setdefault(scheduler.client_of(entry["kwargs"]), []).append(entry)
    for mesh_client, group in by_client.items():
        # A fresh connection: the interrupted one may have been cut mid-call.
        with mesh_client.clone() as client:
            _stop_on(client, group)


def _stop_on(client, entries):
    """Stop ``entries`` (submitted to ``client``'s mesh), sending in-flight ones again first."""
    for entry in entries:
        mirror_id = entry["mirror_id"]
        try:
            if mirror_id is None:
                # The submit was in flight: sending it again answers the job it
                # made, or makes it, so that it can be stopped either way.
                mirror_id = client.submit(**entry["kwargs"])
                if not same_submission(client.query(mirror_id), entry["kwargs"]):
                    continue
            client.kill(mirror_id)
        except MirrorError as exc:
            log.info("Job<%s> not stopped: %s", mirror_id, exc)
