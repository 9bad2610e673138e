"""Step processes of test meshes, found by the environment the agent gives them."""

import contextlib
from pathlib import Path

import psutil


def job_processes(job_id, under=None):
    """Live processes started for ``job_id`` (step processes carry MIRROR_JOB_ID).

    ``under``: only those whose job directory (MIRROR_JOB_DIR) lies below it.
    """
    root = None if under is None else str(Path(under).resolve())
    found = []
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if job_id is not None and env.get("MIRROR_JOB_ID") != str(job_id):
            continue
        if "MIRROR_JOB_ID" not in env:
            continue
        if root is not None and not env.get("MIRROR_JOB_DIR", "").startswith(root):
            continue
        found.append(proc)
    return found


def kill_steps_under(root):
    """SIGKILL what is left of the step processes whose job directories lie below ``root``."""
    for proc in job_processes(None, under=root):
        with contextlib.suppress(psutil.Error):
            proc.kill()
