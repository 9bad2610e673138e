"""The job submission API of seed 001 as module functions on a default client.

``submit_job``, ``get_job_status``, ``get_job_info``, ``stop_job``,
``wait_for_all_jobs`` and the ``graceful_shutdown_on_keyboard_interrupt``
decorator use the client ``configure(...)`` sets, or one built from the
configuration file (``$MIRROR_CONFIG`` or ``config/mirror.yaml``) on first use.
"""

import functools
import logging
import math
import os
import sys
import threading
import time
import warnings

from services.client.connection import MirrorError
from services.client.entrypoint import check_entrypoint
from services.client.mirror import Mirror
from services.common.jobstates import COMPLETED, FAILED, KILLED

log = logging.getLogger("services.client")

_default = None
_default_lock = threading.Lock()
# The job lists of the decorated functions running now: submit_job adds to each.
_trackers = []
_trackers_lock = threading.Lock()


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
        bad = [r for r in records if r["state"] in (FAILED, KILLED)]
        if bad:
            raise RuntimeError(
                "; ".join(
                    f"job {r['job_id']} {r['state']}: {r.get('error') or 'no reason given'}"
                    for r in bad
                )
            )
        if all(r["state"] == COMPLETED for r in records):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            pending = [f"{r['job_id']} ({r['state']})" for r in records if r["state"] != COMPLETED]
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
