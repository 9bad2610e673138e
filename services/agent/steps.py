"""Where and how a step runs, computed from the job bundle: no reports, no writes of the agent's own.

``roots`` are the resource machine's allowed roots and ``rid`` its id, both
only for checks and their messages.
"""

import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from adapters.filegen import step_workdir
from adapters.hooks import HookContext
from services.common.envnames import check_submitted
from services.common.errors import MirrorError
from services.common.jobstates import DONE

ADAPTER = "adapter.xml"
# The steps' shared output and their ledger (`services.agent.ledger`) live in
# .mirror itself, so that a job directory needs no directory of its own for them.
LOGS = Path(".mirror")
LEDGER = LOGS / "steps"


def utcnow():
    return datetime.now(UTC).isoformat()


@dataclass
class Running:
    """A step process the agent started (or found again) and watches."""

    job_id: int
    step: str
    pid: int | None
    started: float | None
    token: str
    start_time: str
    job_dir: str
    killed: bool = False
    # The job's step ledger, and where this run's stderr begins.
    ledger_file: str = ""
    stderr: str = ""
    err_offset: int = 0
    # When a deferred RUNNING report is due (time.monotonic()).
    report_due: float | None = None
    publish: dict = field(default_factory=dict)
    # The job's attempt this run belongs to (None: central numbers no attempts).
    attempt: int | None = None
    # Slurm executor: the batch job (job_id, partition, nodelist, state), whether
    # its node list or partition changed since reported, and when to look next.
    slurm: dict | None = None
    slurm_changed: bool = False
    slurm_next: float = 0.0
    # Started by the step keeper (`services.agent.keeper`), which reports its end.
    kept: bool = False


def next_step(job, step_id):
    """The step to run: ``step_id``, or the first one not done yet."""
    ids = [s["id"] for s in job["steps"]]
    if step_id is not None:
        if step_id not in ids:
            raise MirrorError(
                f"job {job['job_id']} has no step {step_id!r}; steps: {', '.join(ids)}"
            )
        return step_id
    for step in job["steps"]:
        if step["state"] != DONE:
            return step["id"]
    raise MirrorError(f"job {job['job_id']} has run all its steps; recover its results")


# What a step or hook keeps of the agent's own environment; never the rest
# (broker URI, file server passwords and whatever else the agent was given).
ALLOWED_ENV = frozenset({"PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER"})


def base_env(environ, run_as=None):
    """The allow-listed part of the agent's ``environ``, built once per agent.

    With ``run_as`` (a `RunAs`) HOME and USER are that user's. PATH begins
    with the agent's own interpreter directory.
    """
    env = {k: v for k, v in environ.items() if k in ALLOWED_ENV or k.startswith("LC_")}
    if run_as is not None:
        env.update(HOME=run_as.home, USER=run_as.name)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", os.defpath)])
    return env


def job_env(base, job, root, step):
    """``base`` with the job's variables, Mirror's and the submission's (`check_submitted`)."""
    submitted = job.get("environment") or {}
    try:
        check_submitted(submitted)
    except MirrorError as exc:
        raise MirrorError(f"job {job['job_id']}: {exc}") from None
    env = dict(base)
    env.update(
        MIRROR_JOB_ID=str(job["job_id"]),
        MIRROR_JOB_DIR=str(root),
        MIRROR_STEP=step,
        NCPUS=str(job["params"].get("NCPUS", 1)),
        PYTHONUNBUFFERED="1",
    )
    env.update({str(k): str(v) for k, v in submitted.items()})
    return env


def step_env(base, job, root, workdir, step):
    """A step's `job_env`, the job directory and workpath first on PATH.

    The run's ``MIRROR_RUN_TOKEN`` and ``MIRROR_EXIT_FILE`` are added as it starts.
    """
    base = dict(base)
    base["PATH"] = os.pathsep.join([str(root), str(workdir), base.get("PATH", "")])
    return job_env(base, job, root, step)


def log_paths(roots, rid, job, root, workdir):
    """Where a step's stdout and stderr go: the job's own paths if set, else in .mirror.

    Every step of the job appends to the same two files; the ledger says
    where each run begins.
    """
    out = [root / LOGS / "stdout", root / LOGS / "stderr"]
    for i, key in enumerate(("stdout_path", "stderr_path")):
        if job.get(key):
            value = job[key].replace("%j", str(job["job_id"]))
            out[i] = allowed_path(roots, rid, job, value, workdir, key)
    return tuple(out)


def allowed_path(roots, rid, job, value, base, what):
    """``value`` (relative to ``base``) if it lies inside the machine's allowed ``roots``."""
    path = Path(os.path.normpath(Path(base) / value))
    real = Path(os.path.realpath(path))
    for root in roots:
        if real == Path(root) or Path(root) in real.parents:
            return path
    raise MirrorError(
        f"job {job['job_id']}: {what} {value!r} is outside the allowed roots of resource machine "
        f"{rid}: {', '.join(roots)}"
    )


def step_cwd(roots, rid, job, step, root):
    """The step's working directory: the job's own (a submitted script's), else its workpath.

    The adapter makes a missing workpath; the job's own directory must exist.
    """
    if job.get("workdir"):
        cwd = allowed_path(roots, rid, job, job["workdir"], root, "working directory")
        if not cwd.is_dir():
            raise MirrorError(
                f"job {job['job_id']}: working directory {job['workdir']!r} does not exist"
            )
        return cwd
    return step_workdir(step, job["params"], root, ADAPTER)


def hook_context(job, root, workdir, step, publish):
    """What a package's pre or post hook of ``step`` is called with."""
    return HookContext(
        job_id=job["job_id"],
        job_dir=str(root),
        workpath=str(workdir),
        step=step,
        params=dict(job["params"]),
        publish=publish,
    )
