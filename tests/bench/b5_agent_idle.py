"""B5: the agent's own CPU and memory while 100 jobs run ``sleep 20``, monitoring on.

A mesh of its own: agent 1 in autorun with 100 slots, ``MONITOR.interval``
at its default (5 s) and the default heartbeat (2 s). Once all 100 jobs are
``RUNNING`` and their 100 ``sleep`` processes exist, the agent process alone
(not its children) is sampled for ``SAMPLE_S`` seconds with psutil.
"""

import time

import psutil

from tests.bench.common import log, make_zip, para_xml

JOBS = 100
SLEEP = 20
SAMPLE_S = 10
TARGET_CPU = 10
TARGET_RSS_MB = 200
UNIT = "% of one core"
TARGET = f"<= {TARGET_CPU} (and RSS <= {TARGET_RSS_MB} MB)"
TIMEOUT = 240
IDLE_S = 3

ADAPTER = f"""<?xml version="1.0" encoding="UTF-8"?>
<Adapter name="sleeper" version="1.0">
  <Steps>
    <ExeArgument id="sleep" type="exec" value="sleep {SLEEP}" priority="1"/>
  </Steps>
</Adapter>
"""


def sleeps(agent):
    """The ``sleep`` processes under the agent."""
    try:
        return [p for p in agent.children(recursive=True) if p.name() == "sleep"]
    except psutil.Error:
        return []


def sample(proc, seconds, ctx):
    """``(cpu % of one core over the window, max RSS MB, per-second cpu %)``."""
    per_second = []
    rss = proc.memory_info().rss
    start = proc.cpu_times()
    t_start = last_t = time.monotonic()
    last = start
    while time.monotonic() - t_start < seconds:
        ctx.sleep(1)
        now_t, now = time.monotonic(), proc.cpu_times()
        per_second.append(
            round(100 * ((now.user + now.system) - (last.user + last.system)) / (now_t - last_t), 1)
        )
        last, last_t = now, now_t
        rss = max(rss, proc.memory_info().rss)
    busy = (last.user + last.system) - (start.user + start.system)
    return 100 * busy / (last_t - t_start), rss / 2**20, per_second


def run(ctx):
    mesh = ctx.make_mesh(
        "b5", MONITOR={"interval": 5}, AGENT={"slots": JOBS, "heartbeat": 2, "offline_after": 3}
    )
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, slots=JOBS)
        agent = psutil.Process(mesh.pid("agent1"))
        idle_cpu, idle_rss, _ = sample(agent, IDLE_S, ctx)
        c_id = mesh.add_package("sleeper", make_zip({"adapter.xml": ADAPTER}))
        p_id = mesh.add_project("b5-sleep", {"para.xml": para_xml({"i": range(1, JOBS + 1)})})

        log(f"B5: dispatching {JOBS} x sleep {SLEEP}")
        t0 = time.monotonic()
        mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=1)
        ctx.wait(
            lambda: mesh.count(p_id, "RUNNING") == JOBS and len(sleeps(agent)) == JOBS,
            SLEEP,
            interval=0.2,
            what=f"{JOBS} jobs RUNNING with their sleep processes",
        )
        ramp = time.monotonic() - t0
        log(f"B5: all {JOBS} running after {ramp:.1f}s; sampling the agent for {SAMPLE_S}s")
        cpu, rss_mb, per_second = sample(agent, SAMPLE_S, ctx)
        still = len(sleeps(agent))
        running = mesh.count(p_id, "RUNNING")
        log(f"B5: agent {cpu:.1f}% CPU, {rss_mb:.0f} MB RSS ({still} sleeps still running)")
        valid = still == JOBS and running == JOBS
        detail = {
            "rss_mb": round(rss_mb, 1),
            "rss_target_mb": TARGET_RSS_MB,
            "cpu_per_second": per_second,
            "ramp_s": round(ramp, 2),
            "sample_s": SAMPLE_S,
            "sleeps_after_sample": still,
            "running_after_sample": running,
            "idle_cpu_percent": round(idle_cpu, 1),
            "idle_rss_mb": round(idle_rss, 1),
            "monitor_interval_s": 5,
        }
        if not valid:
            detail["error"] = "jobs ended during the sample window"
        return {
            "value": round(cpu, 2),
            "unit": UNIT,
            "target": TARGET,
            "met": valid and cpu <= TARGET_CPU and rss_mb <= TARGET_RSS_MB,
            "reference": None,
            "detail": detail,
        }
    finally:
        ctx.close_mesh(mesh)
