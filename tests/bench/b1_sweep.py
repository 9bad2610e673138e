"""B1: a 500-state sweep of the ``trivial`` package on one autorun agent, in jobs/s.

Measured from the ``jobdispatch.do`` call until no job of the project is left
unfinished (polled with ``job.list(state=<not final>, limit=1)``, cheap), then
checked: every job ``COMPLETED`` and ``jobgetdata.do`` of a sample holds its
result URL. Reference: the same 500 x 3 step commands spawned directly with
``subprocess`` from a thread pool of ``slots`` threads, in the same run;
``ratio`` is jobs/s over that reference (issue 19: at least 0.33), which
keeps the machine's speed of the moment out of the comparison.
"""

import os
import random
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from tests.bench.common import NOT_FINAL, log, para_xml

STATES = 500
TARGET_RATE = 50
# jobs/s over the same-run direct spawn of the same commands.
TARGET_RATIO = 0.33
UNIT = "jobs/s"
TARGET = f">= {TARGET_RATE}, ratio >= {TARGET_RATIO}"
TIMEOUT = 420
POLL = 0.1
SAMPLE = 10


def trivial_commands(x):
    """The argv of each step of the trivial adapter for parameter ``x``, and its template."""
    from adapters.adapter import parse_adapter
    from adapters.bundled import BUNDLED_DIR
    from adapters.substitute import build_argv, render_template

    package = BUNDLED_DIR / "trivial" / "package"
    adapter = parse_adapter((package / "adapter.xml").read_bytes())
    params = {"NCPUS": 1, "x": x}
    files = {}
    for rule in adapter.parafiles:
        text = (package / "template" / rule.source).read_text()
        files[rule.target or rule.source] = render_template(text, params, rule.source)
    return [build_argv(step, params, f"adapter.xml:{step.line}") for step in adapter.steps], files


def spawn_directly(ctx, count, workers):
    """Run ``count`` trivial jobs' commands with subprocess; return the seconds taken."""
    root = ctx.tmp / f"direct-{time.monotonic_ns()}"
    root.mkdir(parents=True)
    prepared = []
    for i in range(count):
        argvs, files = trivial_commands(i + 1)
        job_dir = root / f"job{i}"
        job_dir.mkdir()
        prepared.append((job_dir, argvs, files))

    def one(item):
        job_dir, argvs, files = item
        for name, text in files.items():
            (job_dir / name).write_text(text)
        for argv in argvs:
            subprocess.run(argv, cwd=job_dir, check=True, stdin=subprocess.DEVNULL)

    t0 = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, prepared))
    elapsed = time.monotonic() - t0
    shutil.rmtree(root, ignore_errors=True)
    return elapsed


def filesystem_of(path):
    """The type of the file system holding ``path`` (``ext4``, ``tmpfs``...), from /proc/mounts.

    Every job creates files: on ext4 without a journal each creation scans past
    the inodes freed in the last minutes, so the disk's recent history shows.
    """
    best, kind = "", None
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/")):
            if len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    return kind


def server_span(jobs):
    """Seconds from the first submit time to the last end time, as the database saw them."""
    submits = [datetime.fromisoformat(j["submit_time"]) for j in jobs if j.get("submit_time")]
    ends = [datetime.fromisoformat(j["end_time"]) for j in jobs if j.get("end_time")]
    if not submits or not ends:
        return None
    return (max(ends) - min(submits)).total_seconds()


def run(ctx):
    mesh = ctx.shared()
    c_id = mesh.trivial_c_id()
    p_id = mesh.add_project("b1-sweep", {"para.xml": para_xml({"x": range(1, STATES + 1)})})

    log(f"B1: dispatching {STATES} states")
    t0 = time.monotonic()
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    dispatched = time.monotonic() - t0
    assert len(ids) == STATES, f"dispatch returned {len(ids)} ids, expected {STATES}"
    polls = 0
    last_report = t0
    while True:
        polls += 1
        if not mesh.ok("job", "list", p_id=p_id, state=NOT_FINAL, limit=1):
            break
        now = time.monotonic()
        if now - last_report > 10:
            final = mesh.count(p_id, "COMPLETED,FAILED,KILLED")
            log(f"B1: {final}/{STATES} final after {now - t0:.0f}s")
            last_report = now
        if now - t0 > TIMEOUT - 30:
            final = mesh.count(p_id, "COMPLETED,FAILED,KILLED")
            raise TimeoutError(f"only {final}/{STATES} jobs final after {now - t0:.0f}s")
        ctx.sleep(POLL)
    elapsed = time.monotonic() - t0
    rate = STATES / elapsed
    log(f"B1: all final after {elapsed:.2f}s ({rate:.1f} jobs/s)")

    jobs = mesh.ok("project", "getalljob", p_id=p_id)
    states = {}
    for job in jobs:
        states[job["state"]] = states.get(job["state"], 0) + 1
    completed = states.get("COMPLETED", 0)
    sample = random.Random(1).sample(ids, min(SAMPLE, len(ids)))
    without_result = [
        job_id for job_id in sample if not mesh.ok("jobgetdata", "do", job_id=job_id)["result"]
    ]
    errors = sorted({j["error"] for j in jobs if j.get("error")})[:3]

    log(f"B1: reference, {STATES} x 3 commands spawned directly with {ctx.slots} threads")
    direct = spawn_directly(ctx, STATES, ctx.slots)
    reference = STATES / direct
    ratio = rate / reference
    log(f"B1: direct spawn {reference:.1f} jobs/s, ratio {ratio:.3f}")

    ok = completed == STATES and not without_result
    detail = {
        "jobs": STATES,
        "slots": ctx.slots,
        "wall_s": round(elapsed, 3),
        "dispatch_call_s": round(dispatched, 3),
        "server_span_s": round(server_span(jobs) or 0, 3),
        "states": states,
        "sample_checked": len(sample),
        "sample_without_result": without_result,
        "polls": polls,
        "direct_spawn_s": round(direct, 3),
        "work_fs": filesystem_of(ctx.tmp),
    }
    if errors:
        detail["errors"] = errors
    return {
        "value": round(rate, 2),
        "unit": UNIT,
        "target": TARGET,
        "met": ok and rate >= TARGET_RATE and ratio >= TARGET_RATIO,
        "ratio": round(ratio, 3),
        "reference": round(reference, 1),
        "detail": detail,
    }
