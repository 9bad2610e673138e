"""B6: B1 on PostgreSQL with two central processes against one, in one run.

A mesh of its own on a fresh PostgreSQL database (whatever ``--postgres``
says): file server, gateway, one central, agent 1 in autorun with ``slots``.
A 500-state sweep of ``trivial`` runs with one central; a second central
starts, and once both consume every central queue the same sweep runs again.
Each sweep is timed like B1, then checked job by job: COMPLETED with every
step DONE and a result, exactly one claim (``attempts`` 1 and one ``claimed``
event), one COMPLETED event, one run of each step in the job directory's
ledger (``tests/chaos/report.py``), and no claim the agent saw refused.
"""

import re
import time

from tests.bench.common import NOT_FINAL, log, para_xml
from tests.chaos.report import judge
from tests.mesh import create_pg_database

STATES = 500
TARGET_RATIO = 1.0
UNIT = "ratio"
TARGET = f">= {TARGET_RATIO} (two centrals / one), every job claimed and reported once"
TIMEOUT = 900
POLL = 0.1
STEPS = ("prepare", "compute", "finish")
CENTRAL_QUEUES = ("rpc-job", "rpc-jobdispatch", "rpc-machine", "rpc-project")
NOT_CLAIMED = re.compile(r"Job<(\d+)> not claimed: ")


def sweep(ctx, mesh, c_id, label):
    """Dispatch STATES jobs and wait until none is unfinished; answer ``(p_id, ids, seconds)``."""
    p_id = mesh.add_project(f"b6-{label}", {"para.xml": para_xml({"x": range(1, STATES + 1)})})
    t0 = time.monotonic()
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    assert len(ids) == STATES, f"dispatch returned {len(ids)} ids, expected {STATES}"
    while mesh.ok("job", "list", p_id=p_id, state=NOT_FINAL, limit=1):
        if time.monotonic() - t0 > TIMEOUT / 3:
            raise TimeoutError(f"B6 {label}: jobs unfinished after {time.monotonic() - t0:.0f}s")
        ctx.sleep(POLL)
    elapsed = time.monotonic() - t0
    log(f"B6 {label}: {STATES} jobs in {elapsed:.2f}s ({STATES / elapsed:.1f} jobs/s)")
    return p_id, ids, elapsed


def check_jobs(mesh, p_id, ids):
    """Per-job checks of one sweep: counts of jobs that break each rule (all 0 when sound)."""
    bad = {"not_completed": 0, "claimed_twice": 0, "report_lost": 0}
    for job_id in ids:
        job = mesh.ok("job", "query", job_id=job_id)
        events = mesh.ok("job", "events", job_id=job_id)
        claims = sum(e["message"] == "claimed" for e in events)
        finals = sum(
            e["state"] == "COMPLETED" and not e["message"].startswith("step ") for e in events
        )
        steps_done = [s["state"] == "DONE" and s["exit_code"] == 0 for s in job["steps"]]
        step_events = {e["message"] for e in events if e["message"].startswith("step ")}
        bad["not_completed"] += job["state"] != "COMPLETED"
        bad["claimed_twice"] += job["attempts"] != 1 or claims != 1
        bad["report_lost"] += (
            not all(steps_done)
            or not job["result"]
            or finals != 1
            or any(f"step {s} DONE (exit code 0)" not in step_events for s in STEPS)
        )
    verdict = judge(mesh, [p_id], len(ids), steps=STEPS)
    wanted = set(ids)
    refused = sum(int(m.group(1)) in wanted for m in NOT_CLAIMED.finditer(mesh.log("agent1")))
    return {
        **bad,
        "claims_refused": refused,
        "ledger_duplicated": verdict["duplicated"],
        "ledger_missing": verdict["missing_runs"],
        "lost": verdict["lost"],
    }


def centrals_consuming(mesh, count):
    return all(mesh.queue(name)[1] == count for name in CENTRAL_QUEUES)


def run(ctx):
    name, url = create_pg_database()
    ctx.databases.append(name)
    mesh = ctx.make_mesh("b6", db_url=url)
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, slots=ctx.slots)
        c_id = mesh.trivial_c_id()
        # One short sweep first: caches, connections and the package on the agent.
        sweep_warm = sweep_small(ctx, mesh, c_id)
        p_one, ids_one, one_s = sweep(ctx, mesh, c_id, "one-central")
        mesh.start("central2", "central")
        ctx.wait(lambda: centrals_consuming(mesh, 2), 60, what="the second central consuming")
        p_two, ids_two, two_s = sweep(ctx, mesh, c_id, "two-centrals")
        checks = {
            "one_central": check_jobs(mesh, p_one, ids_one),
            "two_centrals": check_jobs(mesh, p_two, ids_two),
        }
    finally:
        ctx.close_mesh(mesh)
    one_rate, two_rate = STATES / one_s, STATES / two_s
    ratio = two_rate / one_rate
    sound = all(v == 0 for c in checks.values() for v in c.values())
    return {
        "value": round(ratio, 3),
        "unit": UNIT,
        "target": TARGET,
        "met": sound and ratio >= TARGET_RATIO,
        "reference": round(one_rate, 2),
        "detail": {
            "jobs": STATES,
            "slots": ctx.slots,
            "database": "postgresql",
            "jobs_per_s_one_central": round(one_rate, 2),
            "jobs_per_s_two_centrals": round(two_rate, 2),
            "wall_s_one_central": round(one_s, 3),
            "wall_s_two_centrals": round(two_s, 3),
            "warm_up_s": round(sweep_warm, 3),
            "checks": checks,
        },
    }


def sweep_small(ctx, mesh, c_id):
    """A 20-job warm-up sweep; answer its seconds."""
    p_id = mesh.add_project("b6-warm-up", {"para.xml": para_xml({"x": range(1, 21)})})
    t0 = time.monotonic()
    mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    ctx.wait(
        lambda: not mesh.ok("job", "list", p_id=p_id, state=NOT_FINAL, limit=1),
        120,
        interval=POLL,
        what="the warm-up sweep",
    )
    return time.monotonic() - t0
