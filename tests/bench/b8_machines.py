"""B8: the central process's CPU with fifty machines heartbeating, idle and claiming short jobs.

A mesh of its own with the product's timings (heartbeat 2 s, reconciler
every 10 s). The central process alone is sampled with psutil
(``cpu_times``, user + system) over fixed windows:

1. with no machine at all (the reference: the reconciler and nameko alone);
2. with fifty autorun machines idle, hosted in one process
   (``tests/bench/agent_host.py``: each machine's ``jobagent_<rid>`` service,
   the agent's own heartbeat, recovery, autorun, claim and report code); the
   figure is this window's CPU in % of one core, and the CPU of one heartbeat
   is what it adds to the reference, divided by the beats the window holds
   (nameko's timer keeps a fixed rate: machines x window / heartbeat);
3. while the fifty machines run a sweep of short ``trivial`` jobs: the
   dispatch call is timed on its own, and from its answer until no job is
   left unfinished the central CPU beyond the idle rate, divided by the jobs,
   is the CPU of one claimed job (its claim and its reports).

Last, one real ``mirror agent`` process (a manual machine of its own) is
sampled for its RSS and idle CPU, beside the host's cost per machine: what
fifty real agent processes would have cost this 2-core machine.
"""

import os
import signal
import subprocess
import sys
import time

import psutil

from tests.bench.common import FINAL, NOT_FINAL, log, para_xml
from tests.mesh import ROOT

MACHINES = 50
HEARTBEAT = 2
WINDOW_S = 20
SETTLE_S = 12
JOBS = 200
REAL_AGENT_S = 8
POLL = 1.0
TARGET_CPU = 20
UNIT = "% of one core"
TARGET = f"<= {TARGET_CPU} (central, {MACHINES} idle machines)"
TIMEOUT = 600


def cpu_s(proc):
    times = proc.cpu_times()
    return times.user + times.system


def measure(ctx, procs, seconds):
    """CPU seconds of each of ``procs`` over a window of ``seconds``; answer ``(cpu, wall)``."""
    start = [cpu_s(p) for p in procs]
    t0 = time.monotonic()
    ctx.sleep(seconds)
    wall = time.monotonic() - t0
    return [cpu_s(p) - s for p, s in zip(procs, start, strict=True)], wall


def online(mesh, rids):
    """How many of ``rids`` central reports online."""
    return sum(m["online"] for m in mesh.ok("machine", "list") if m["rid"] in rids)


def start_host(ctx, mesh):
    """The agent host of rids 1..MACHINES; answer its process once all are online."""
    log_file = open(mesh.tmp / "agenthost.log", "ab")
    cmd = [sys.executable, "-m", "tests.bench.agent_host", str(mesh.config_path), "1"]
    proc = ctx.popen(
        [*cmd, str(MACHINES), "--slots", "1"],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    rids = set(range(1, MACHINES + 1))

    def all_online():
        if proc.poll() is not None:
            raise AssertionError(f"the agent host exited with {proc.returncode}; see agenthost.log")
        return online(mesh, rids) == MACHINES

    t0 = time.monotonic()
    ctx.wait(all_online, 180, interval=1, what=f"{MACHINES} machines online")
    log(f"B8: {MACHINES} machines online after {time.monotonic() - t0:.1f}s")
    return proc, rids


def stop_host(proc):
    """Stop the agent host as a machine's agent is stopped (SIGTERM), killed past a limit."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    t0 = time.monotonic()
    try:
        proc.wait(40)
        log(
            f"B8: the agent host stopped in {time.monotonic() - t0:.1f}s (exit code {proc.returncode})"
        )
    except subprocess.TimeoutExpired:
        log("B8: the agent host did not stop on SIGTERM; killing it")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def claim_sweep(ctx, mesh, central, idle_rate):
    """Run JOBS trivial jobs on the machines; answer the sweep's figures."""
    c_id = mesh.trivial_c_id()
    p_id = mesh.add_project("b8-sweep", {"para.xml": para_xml({"x": range(1, JOBS + 1)})})
    before = cpu_s(central)
    t0 = time.monotonic()
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    assert len(ids) == JOBS, f"dispatch returned {len(ids)} ids, expected {JOBS}"
    t1, dispatched = time.monotonic(), cpu_s(central)
    ctx.wait(
        lambda: not mesh.ok("job", "list", p_id=p_id, state=NOT_FINAL, limit=1),
        TIMEOUT / 2,
        interval=POLL,
        what=f"the {JOBS}-job sweep to end",
    )
    t2, ended = time.monotonic(), cpu_s(central)
    jobs = mesh.ok("job", "list", p_id=p_id, limit=JOBS + 1)
    states = {}
    for job in jobs:
        states[job["state"]] = states.get(job["state"], 0) + 1
    assert set(states) <= set(FINAL), f"jobs not ended: {states}"
    extra = (ended - dispatched) - idle_rate * (t2 - t1)
    return {
        "jobs": JOBS,
        "states": states,
        "machines_used": len({j["rid"] for j in jobs}),
        "dispatch_s": round(t1 - t0, 3),
        "dispatch_cpu_ms_per_job": round(1000 * (dispatched - before) / JOBS, 2),
        "run_wall_s": round(t2 - t1, 2),
        "run_central_cpu_percent": round(100 * (ended - dispatched) / (t2 - t1), 1),
        "cpu_ms_per_claimed_job": round(1000 * extra / JOBS, 2),
    }


def real_agent(ctx, mesh, rid):
    """RSS (MB) and idle CPU (% of one core) of one real ``mirror agent`` process."""
    mesh.start_agent(rid, autorun=True, slots=1)
    try:
        proc = psutil.Process(mesh.pid(f"agent{rid}"))
        ctx.sleep(2)
        (cpu,), wall = measure(ctx, [proc], REAL_AGENT_S)
        return proc.memory_info().rss / 2**20, 100 * cpu / wall
    finally:
        mesh.stop(f"agent{rid}")


def run(ctx):
    mesh = ctx.make_mesh(
        "b8",
        AGENT={"heartbeat": HEARTBEAT, "offline_after": 3},
        RECONCILER={"interval": 10, "lost_after": 60},
        MONITOR={"interval": 5},
    )
    host_proc = None
    try:
        mesh.start_core()
        central = psutil.Process(mesh.pid("central"))
        log(f"B8: central alone for {WINDOW_S}s")
        (base_cpu,), base_wall = measure(ctx, [central], WINDOW_S)
        base_rate = base_cpu / base_wall
        host_proc, rids = start_host(ctx, mesh)
        host = psutil.Process(host_proc.pid)
        # The machines' start-up (registration, recovery, catch-up) is not idleness.
        ctx.sleep(SETTLE_S)
        log(f"B8: central with {MACHINES} idle machines for {WINDOW_S}s")
        (idle_cpu, host_cpu), idle_wall = measure(ctx, [central, host], WINDOW_S)
        still_online = online(mesh, rids)
        idle_rate = idle_cpu / idle_wall
        beats = MACHINES * idle_wall / HEARTBEAT
        host_rss = host.memory_info().rss / 2**20
        log(f"B8: central {100 * idle_rate:.1f}% idle, {100 * base_rate:.1f}% alone")
        log(f"B8: a {JOBS}-job sweep on {MACHINES} machines")
        sweep = claim_sweep(ctx, mesh, central, idle_rate)
        real_rss, real_cpu = real_agent(ctx, mesh, MACHINES + 1)
    finally:
        # The machines first: with central gone they would only log failed beats.
        if host_proc is not None:
            stop_host(host_proc)
        ctx.close_mesh(mesh)
    value = 100 * idle_rate
    detail = {
        "machines": MACHINES,
        "heartbeat_s": HEARTBEAT,
        "window_s": WINDOW_S,
        "database": "postgresql" if ctx.args.postgres else "sqlite",
        "central_cpu_percent_no_machine": round(100 * base_rate, 2),
        "online_after_window": still_online,
        "heartbeats_in_window": round(beats),
        "cpu_ms_per_heartbeat": round(1000 * (idle_cpu - base_rate * idle_wall) / beats, 3),
        **sweep,
        "host_cpu_percent_idle": round(100 * host_cpu / idle_wall, 1),
        "host_rss_mb": round(host_rss, 1),
        "host_rss_mb_per_machine": round(host_rss / MACHINES, 2),
        "real_agent_rss_mb": round(real_rss, 1),
        "real_agent_idle_cpu_percent": round(real_cpu, 2),
    }
    sound = still_online == MACHINES and sweep["states"] == {"COMPLETED": JOBS}
    if not sound:
        detail["error"] = "machines went offline or jobs did not complete"
    return {
        "value": round(value, 2),
        "unit": UNIT,
        "target": TARGET,
        "met": sound and value <= TARGET_CPU,
        "reference": round(100 * base_rate, 2),
        "detail": detail,
    }
