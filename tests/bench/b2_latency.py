"""B2: one trivial job at a time, ``jobdispatch.do`` to ``COMPLETED``, p50 over 50 jobs.

Each job is dispatched alone (a one-state para.xml) and ``job.query`` is
polled every ~5 ms until it is final. Reference: the p50 of spawning the same
three step commands directly, one after the other.
"""

import shutil
import subprocess
import time

from tests.bench.b1_sweep import trivial_commands
from tests.bench.common import FINAL, log, para_xml, percentile

JOBS = 50
WARMUP = 2
TARGET_MS = 150
UNIT = "ms"
TARGET = f"<= {TARGET_MS}"
TIMEOUT = 240
POLL = 0.005
JOB_TIMEOUT = 30


def direct_ms(ctx, count):
    """Milliseconds to write the input and run the three commands, ``count`` times."""
    argvs, files = trivial_commands(1)
    root = ctx.tmp / f"direct-b2-{time.monotonic_ns()}"
    times = []
    for i in range(count):
        job_dir = root / f"job{i}"
        job_dir.mkdir(parents=True)
        t0 = time.perf_counter()
        for name, text in files.items():
            (job_dir / name).write_text(text)
        for argv in argvs:
            subprocess.run(argv, cwd=job_dir, check=True, stdin=subprocess.DEVNULL)
        times.append((time.perf_counter() - t0) * 1000)
    shutil.rmtree(root, ignore_errors=True)
    return times


def one_job(ctx, mesh, p_id, c_id):
    """``(ms, final state, ms until RUNNING was first seen)`` of one job."""
    t0 = time.perf_counter()
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    seen_running = None
    while True:
        job = mesh.ok("job", "query", job_id=job_id)
        now = time.perf_counter()
        if job["state"] in FINAL:
            return (now - t0) * 1000, job, seen_running
        if seen_running is None and job["state"] == "RUNNING":
            seen_running = (now - t0) * 1000
        if now - t0 > JOB_TIMEOUT:
            raise TimeoutError(f"job {job_id} still {job['state']} after {JOB_TIMEOUT}s")
        ctx.sleep(POLL)


def run(ctx):
    mesh = ctx.shared()
    c_id = mesh.trivial_c_id()
    p_id = mesh.add_project("b2-latency", {"para.xml": para_xml(single={"x": 1})})
    for _ in range(WARMUP):
        one_job(ctx, mesh, p_id, c_id)
    log(f"B2: {JOBS} jobs one at a time")
    times, to_running, failed = [], [], []
    for _ in range(JOBS):
        ms, job, running_ms = one_job(ctx, mesh, p_id, c_id)
        times.append(ms)
        if running_ms is not None:
            to_running.append(running_ms)
        if job["state"] != "COMPLETED":
            failed.append(f"{job['job_id']}: {job['state']} {job.get('error')}")
    direct = direct_ms(ctx, JOBS)
    p50 = percentile(times, 0.5)
    log(f"B2: p50 {p50:.1f} ms, p95 {percentile(times, 0.95):.1f} ms")
    detail = {
        "jobs": JOBS,
        "p95_ms": round(percentile(times, 0.95), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "p50_to_first_seen_running_ms": round(percentile(to_running, 0.5), 1)
        if to_running
        else None,
        "direct_p50_ms": round(percentile(direct, 0.5), 2),
        "not_completed": failed[:5],
    }
    return {
        "value": round(p50, 1),
        "unit": UNIT,
        "target": TARGET,
        "met": not failed and p50 <= TARGET_MS,
        "reference": round(percentile(direct, 0.5), 2),
        "detail": detail,
    }
