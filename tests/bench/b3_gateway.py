"""B3: ``GET /proxy/job-getrid`` through the gateway vs direct ``ClusterRpcProxy`` calls.

16 concurrent clients each way, same run, ``ROUNDS`` interleaved runs of ~5 s each: ``PROCS`` load generator
processes (``tests.bench.load``) of ``CLIENTS / PROCS`` OS threads, each
thread with its own keep-alive HTTP connection or its own proxy. Value: the
ratio gateway calls/s over direct calls/s.
"""

import json
import subprocess
import sys
import time

from tests.bench.common import log, para_xml, percentile
from tests.mesh import ROOT

CLIENTS = 16
PROCS = 4
DURATION = 5.0
# Runs of each kind, interleaved; the figures are their totals.
ROUNDS = 2
TARGET_RATIO = 0.8
UNIT = "ratio"
TARGET = f">= {TARGET_RATIO}"
TIMEOUT = 150
# A rid with no agent: the job stays QUEUED and nothing runs meanwhile.
RID = 98


def load(ctx, mode, extra, expect):
    """Run the load generators of ``mode`` once; return their outputs."""
    threads = [CLIENTS // PROCS + (1 if i < CLIENTS % PROCS else 0) for i in range(PROCS)]
    procs = []
    for count in threads:
        cmd = [sys.executable, "-m", "tests.bench.load", mode, *extra]
        cmd += ["--expect", json.dumps(expect), "--threads", str(count)]
        cmd += ["--duration", str(DURATION)]
        procs.append(
            ctx.popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    for proc in procs:
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.wait(10)
            raise RuntimeError(f"{mode} load generator did not start (exit {proc.returncode})")
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outs = []
    for proc in procs:
        line = proc.stdout.readline()
        proc.wait(30)
        if not line:
            raise RuntimeError(f"{mode} load generator gave no figures (exit {proc.returncode})")
        outs.append(json.loads(line))
    return outs


def merge(runs):
    """Totals of several runs, each a list of load generator outputs."""
    outs = [o for run in runs for o in run]
    latencies = [x for o in outs for x in o["latencies_ms"]]
    calls = sum(o["calls"] for o in outs)
    return {
        "rate": round(calls / (DURATION * len(runs)), 1),
        "rate_per_run": [round(sum(o["calls"] for o in run) / DURATION, 1) for run in runs],
        "calls": calls,
        "errors": sum(o["errors"] for o in outs),
        "messages": [m for o in outs for m in o["messages"]][:3],
        "reconnects": sum(o["reconnects"] for o in outs),
        "p50_ms": round(percentile(latencies, 0.5), 2) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 2) if latencies else None,
    }


def run(ctx):
    mesh = ctx.shared()
    c_id = mesh.trivial_c_id()
    p_id = mesh.add_project("b3-getrid", {"para.xml": para_xml(single={"x": 1})})
    # Dispatch refuses an unknown rid: one heartbeat makes the machine known.
    mesh.ok("machine", "heartbeat", rid=RID, name="b3", slots=1)
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=RID)
    expect = [0, RID]
    status, answer = mesh.http("/proxy/job-getrid", {"job_id": job_id})
    assert (status, answer) == (200, expect), f"gateway answered {status} {answer!r}"

    rpc_args = ["--amqp", mesh.config["AMQP_URI"], "--exchange", mesh.exchange]
    rpc_args += ["--job-id", str(job_id)]
    url = f"{mesh.base_url}/proxy/job-getrid?job_id={job_id}"
    runs = {"direct": [], "gateway": []}
    # Interleaved (direct, gateway, gateway, direct): neither side always goes first.
    order = ["direct", "gateway"]
    for n in range(ROUNDS):
        for kind in order if n % 2 == 0 else order[::-1]:
            ctx.check()
            log(f"B3: round {n + 1}, {kind}, {CLIENTS} clients for {DURATION:g}s")
            if kind == "direct":
                runs[kind].append(load(ctx, "rpc", rpc_args, expect))
            else:
                runs[kind].append(load(ctx, "http", ["--url", url], expect))
            time.sleep(0.5)
    direct, gateway = merge(runs["direct"]), merge(runs["gateway"])
    ratio = gateway["rate"] / direct["rate"] if direct["rate"] else 0.0
    log(f"B3: gateway {gateway['rate']:.0f}/s, direct {direct['rate']:.0f}/s, ratio {ratio:.2f}")
    return {
        "value": round(ratio, 3),
        "unit": UNIT,
        "target": TARGET,
        "met": ratio >= TARGET_RATIO and not gateway["errors"] and not direct["errors"],
        "reference": direct["rate"],
        "detail": {
            "gateway_calls_per_s": gateway["rate"],
            "direct_calls_per_s": direct["rate"],
            "clients": CLIENTS,
            "processes": PROCS,
            "duration_s": DURATION,
            "rounds": ROUNDS,
            "gateway": gateway,
            "direct": direct,
        },
    }
