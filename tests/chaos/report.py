"""What a run left behind: jobs lost, stuck, failed, step runs duplicated, processes orphaned.

The test module ``tests/integration/test_faults.py`` and the soak run judge a
sweep the same way, from central's records, the step ledgers of every job
directory on every machine, and the live processes.
"""

import os
import re
from collections import Counter
from pathlib import Path

from services.agent import ledger
from services.common.jobstates import ACTIVE, COMPLETED, FINAL, QUEUED
from tests.chaos.servers import processes_of, work_roots

_JOB_DIR = re.compile(r"job(\d+)(?:\.\d+)?")


def step_runs(mesh, job_ids):
    """``{job_id: [{step: runs}, ...]}``, one dict per directory the job has on any machine."""
    wanted = set(job_ids)
    found = {}
    for root in work_roots(mesh):
        with os.scandir(root) as entries:
            for entry in entries:
                match = _JOB_DIR.fullmatch(entry.name)
                if not match or int(match.group(1)) not in wanted:
                    continue
                runs = Counter(r.step for r in ledger.read(Path(entry.path) / ".mirror" / "steps"))
                found.setdefault(int(match.group(1)), []).append(dict(runs))
    return found


def judge(mesh, p_ids, expected, steps):
    """The verdict on the jobs of projects ``p_ids``, of which ``expected`` were dispatched.

    ``lost``: jobs still QUEUED or gone (no agent ever finished them); ``stuck``:
    jobs still PREPARING or RUNNING; ``failed``: ended otherwise than COMPLETED;
    ``extra_jobs``: jobs beyond ``expected`` (a dispatch that ran twice);
    ``duplicated``: step runs beyond one per step in a job directory (each
    attempt builds its own directory); ``missing_runs``: steps of a COMPLETED
    job with no run in any of its directories; ``orphans``: live processes of
    the jobs.
    """
    jobs = [j for p_id in p_ids for j in mesh.ok("project", "getalljob", p_id=p_id)]
    ids = [j["job_id"] for j in jobs]
    states = Counter(j["state"] for j in jobs)
    runs = step_runs(mesh, ids)
    duplicated = sum(max(0, n - 1) for dirs in runs.values() for d in dirs for n in d.values())
    missing = sum(
        1
        for j in jobs
        if j["state"] == COMPLETED
        for step in steps
        if not any(d.get(step) for d in runs.get(j["job_id"], []))
    )
    return {
        "jobs": len(jobs),
        "states": dict(states),
        "lost": states[QUEUED] + max(0, expected - len(jobs)),
        "stuck": sum(states[s] for s in ACTIVE),
        "failed": sum(states[s] for s in FINAL if s != COMPLETED),
        "extra_jobs": max(0, len(jobs) - expected),
        "duplicated": duplicated,
        "missing_runs": missing,
        "orphans": sum(len(p) for p in processes_of(mesh, ids).values()),
    }


def clean(verdict):
    """True when nothing was lost, stuck, failed, duplicated, missed or orphaned."""
    keys = ("lost", "stuck", "failed", "extra_jobs", "duplicated", "missing_runs", "orphans")
    return all(verdict[k] == 0 for k in keys)
