"""``python -m tests.bench.b1_cpu [--postgres] [--runs N]``: where B1's CPU goes, per job.

Runs B1 (`tests.bench.b1_sweep`) ``N`` times on one shared mesh and prints,
per run, one JSON line with the jobs/s, the same-run reference and ratio, and
the CPU milliseconds per job of each mesh process (psutil ``cpu_times`` before
and after the sweep): the file server, central, the gateway, the agent, its
step keeper, the step processes (reaped by the agent or the keeper), the
PostgreSQL backends of the mesh's database and RabbitMQ (the whole broker:
other work on the machine counts too). CPU time is less noisy than wall time
on a shared machine, but not free of it: compare runs made side by side.
Not run by ``make bench``.
"""

import argparse
import json
import os
import sys
import tempfile

import psutil

from tests.bench import b1_sweep
from tests.bench.common import Context, log


def cpu(proc):
    """``(own seconds, reaped children's seconds)`` of a process; zeros once it is gone."""
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return 0.0, 0.0
    return t.user + t.system, t.children_user + t.children_system


def keepers(agent):
    """The step keeper processes the agent started."""
    found = {}
    try:
        for child in agent.children():
            if "services.agent.keeper" in " ".join(child.cmdline()):
                found[child.pid] = child
    except psutil.Error:
        pass
    return found


def pg_backends(database):
    """The PostgreSQL server processes serving ``database``."""
    if database is None:
        return {}
    import sqlalchemy as sa

    from tests.mesh import PG_ADMIN

    engine = sa.create_engine(PG_ADMIN)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d")
            pids = [row[0] for row in conn.execute(query, {"d": database})]
    finally:
        engine.dispose()
    found = {}
    for pid in pids:
        try:
            found[pid] = psutil.Process(pid)
        except psutil.Error:
            pass
    return found


def brokers():
    return {p.pid: p for p in psutil.process_iter(["name"]) if "beam" in (p.info["name"] or "")}


def snapshot(ctx, mesh):
    """CPU seconds of every process of interest, by group then pid."""
    agent = psutil.Process(mesh.pid("agent1"))
    database = ctx.databases[0] if ctx.databases else None
    groups = {name: {mesh.pid(name): psutil.Process(mesh.pid(name))} for name in mesh.procs}
    groups["keeper"] = keepers(agent)
    groups["postgres"] = pg_backends(database)
    groups["rabbitmq"] = brokers()
    return {group: {pid: cpu(p) for pid, p in procs.items()} for group, procs in groups.items()}


def spent(before, after, index):
    """Seconds spent between two snapshots of one group (processes new since count whole)."""
    return sum(value[index] - before.get(pid, (0.0, 0.0))[index] for pid, value in after.items())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.b1_cpu", description=__doc__)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--slots", type=int, help="agent slots (default: all cores)")
    args = parser.parse_args(argv)
    ctx_args = argparse.Namespace(
        postgres=args.postgres, slots=args.slots, b7_jobs=1000, timeout_scale=1.0, keep=False
    )
    ctx = Context(ctx_args, tempfile.mkdtemp(prefix="mirror-b1cpu-"))
    try:
        mesh = ctx.shared()
        for run in range(args.runs):
            load = round(os.getloadavg()[0], 2)
            before = snapshot(ctx, mesh)
            result = b1_sweep.run(ctx)
            after = snapshot(ctx, mesh)
            jobs = result["detail"]["jobs"]
            per_job = {
                group: round(1000 * spent(before.get(group, {}), after[group], 0) / jobs, 2)
                for group in after
            }
            steps = spent(before["agent1"], after["agent1"], 1)
            steps += spent(before.get("keeper", {}), after["keeper"], 1)
            per_job["steps"] = round(1000 * steps / jobs, 2)
            line = {
                "run": run,
                "db": "postgres" if args.postgres else "sqlite",
                "loadavg_1m_before": load,
                "slots": ctx.slots,
                "jobs_per_s": result["value"],
                "reference": result["reference"],
                "ratio": round(result["value"] / result["reference"], 3),
                "cpu_ms_per_job": per_job,
            }
            print(json.dumps(line), flush=True)
    finally:
        ctx.cleanup()
        log("b1_cpu: done")


if __name__ == "__main__":
    sys.exit(main())
