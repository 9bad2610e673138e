"""Faults of the servers a test mesh stands on, and what a run leaves behind on the machine.

Broker and PostgreSQL are shared by every worktree on this machine: stopping
either takes a file lock, so that broker-wide or server-wide tests never overlap,
and starts it again whatever happens.
"""

import contextlib
import fcntl
import os
import subprocess
from pathlib import Path

from tests.mesh import BROKER_SETTINGS_LOCK, PG_ADMIN, rabbitmqctl, wait_for

# One test at a time stops PostgreSQL, as BROKER_SETTINGS_LOCK serialises the broker.
POSTGRES_LOCK = Path("/tmp/mirror-test-postgres.lock")


def broker_answers():
    """True when the broker's node answers ``rabbitmq-diagnostics -q ping``."""
    done = subprocess.run(
        ["rabbitmq-diagnostics", "-q", "ping"], capture_output=True, text=True, timeout=30
    )
    return done.returncode == 0


@contextlib.contextmanager
def broker_stopped():
    """Stop the RabbitMQ application for the block; start it again whatever happens.

    Holds BROKER_SETTINGS_LOCK so that no broker-wide test of another worktree overlaps.
    """
    with open(BROKER_SETTINGS_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            rabbitmqctl("stop_app")
            yield
        finally:
            rabbitmqctl("start_app")
            wait_for(broker_answers, 120, interval=1, what="the broker to answer again")


def postgres_version():
    """The version of the ``main`` PostgreSQL cluster of this machine (``pg_lsclusters``)."""
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] == "main":
            return parts[0]
    raise AssertionError(f"no main PostgreSQL cluster in {out.stdout!r}")


def postgres_answers():
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def pg_ctl(action):
    version = postgres_version()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextlib.contextmanager
def postgres_stopped():
    """Stop the PostgreSQL server for the block; start it again whatever happens."""
    with open(POSTGRES_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pg_ctl("stop")
            yield
        finally:
            pg_ctl("start")
            wait_for(postgres_answers, 120, interval=1, what="PostgreSQL to answer again")


def reset_rpc(mesh):
    """Drop the mesh's RPC client (its connection died with the broker); the next call reconnects."""
    if mesh._proxy is not None:
        with contextlib.suppress(Exception):
            mesh._proxy.stop()
        mesh._proxy = None


def work_roots(mesh):
    """The work roots of the mesh's agents (``DATA_DIR/work/rid<N>``)."""
    return sorted((Path(mesh.config["DATA_DIR"]) / "work").glob("rid*"))


def processes_of(mesh, job_ids):
    """``{job_id: [pid, ...]}`` of live processes started for any of ``job_ids`` in ``mesh``.

    Job ids repeat across the meshes of parallel runs: a process counts when its
    job directory (MIRROR_JOB_DIR) lies in this mesh's DATA_DIR.
    """
    import psutil

    wanted = {str(j) for j in job_ids}
    data = str(Path(mesh.config["DATA_DIR"])) + os.sep
    found = {}
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        job = env.get("MIRROR_JOB_ID")
        if job in wanted and env.get("MIRROR_JOB_DIR", "").startswith(data):
            found.setdefault(int(job), []).append(proc.pid)
    return found
