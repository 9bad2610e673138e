"""``python -m tests.bench.run [--postgres] [--only B1,B3]``: run the benchmarks of SPEC 12.

Prints one JSON line per benchmark on stdout; progress goes to stderr. Each
benchmark runs in a worker thread under a time limit: one that fails or runs
out of time is reported with ``met: false`` and the error in ``detail``, and
the run goes on. Every process, vhost and database is removed at the end,
Ctrl+C and SIGTERM included.
"""

import argparse
import importlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

from tests.bench.common import Context, log

BENCHMARKS = {
    "B1": "tests.bench.b1_sweep",
    "B2": "tests.bench.b2_latency",
    "B3": "tests.bench.b3_gateway",
    "B4": "tests.bench.b4_dispatch",
    "B5": "tests.bench.b5_agent_idle",
    "B6": "tests.bench.b6_centrals",
    "B7": "tests.bench.b7_grown",
    "B8": "tests.bench.b8_machines",
    "B9": "tests.bench.b9_sweep_query",
}
# Seconds the driver waits for a cancelled benchmark's thread to give up.
GRACE = 20


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__)
    parser.add_argument(
        "--postgres", action="store_true", help="a fresh PostgreSQL database (dropped afterwards)"
    )
    parser.add_argument("--only", help="comma-separated benchmark ids, e.g. B1,B3")
    parser.add_argument("--slots", type=int, help="agent slots of B1/B2 (default: all cores)")
    parser.add_argument(
        "--b7-jobs",
        type=int,
        default=int(os.environ.get("MIRROR_B7_JOBS", 1_000_000)),
        help="jobs B7 fills its database with (default 1,000,000, or MIRROR_B7_JOBS)",
    )
    parser.add_argument(
        "--timeout-scale", type=float, default=1.0, help="multiply every time limit"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (mesh logs); kept anyway when a benchmark breaks",
    )
    args = parser.parse_args(argv)
    wanted = [b.strip().upper() for b in (args.only or ",".join(BENCHMARKS)).split(",")]
    unknown = [b for b in wanted if b and b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]} (known: {', '.join(BENCHMARKS)})")
    if args.b7_jobs < 1000:
        parser.error(f"--b7-jobs must be at least 1000, got {args.b7_jobs}")
    args.ids = [b for b in BENCHMARKS if b in wanted]
    return args


def failed(module, bench_id, message, elapsed=None):
    detail = {"error": message}
    if elapsed is not None:
        detail["elapsed_s"] = round(elapsed, 1)
    return {
        "value": None,
        "unit": module.UNIT,
        "target": module.TARGET,
        "met": False,
        "reference": None,
        "detail": detail,
    }


def run_one(ctx, bench_id):
    """Run one benchmark under its time limit; always return a result dict."""
    module = importlib.import_module(BENCHMARKS[bench_id])
    limit = module.TIMEOUT * ctx.args.timeout_scale
    ctx.cancel = threading.Event()
    box = {}

    def target():
        try:
            box["result"] = module.run(ctx)
        except BaseException as exc:  # noqa: BLE001 - reported, never raised
            box["error"] = exc
            box["trace"] = traceback.format_exc()

    log(f"{bench_id}: start (time limit {limit:.0f}s)")
    # Other work on the machine skews every figure: keep the load beside them.
    load_before = round(os.getloadavg()[0], 2)
    started = time.monotonic()
    thread = threading.Thread(target=target, name=bench_id, daemon=True)
    thread.start()
    try:
        while thread.is_alive() and time.monotonic() - started < limit:
            thread.join(0.2)
    except BaseException:
        ctx.cancel.set()
        raise
    elapsed = time.monotonic() - started
    if thread.is_alive():
        ctx.cancel.set()
        thread.join(GRACE)
        ctx.kill_children()
        # The mesh is in an unknown state: the next benchmark gets a fresh one.
        ctx.close_shared()
        log(f"{bench_id}: timed out after {limit:.0f}s")
        return failed(module, bench_id, f"timed out after {limit:.0f}s", elapsed)
    ctx.kill_children()
    if "error" in box:
        exc = box["error"]
        log(f"{bench_id}: failed after {elapsed:.1f}s\n{box['trace']}")
        if type(exc).__name__ in ("ProcessDied", "AssertionError", "TimeoutError"):
            ctx.close_shared()
        return failed(module, bench_id, f"{type(exc).__name__}: {exc}"[:2000], elapsed)
    result = box["result"]
    result.setdefault("detail", {})["elapsed_s"] = round(elapsed, 1)
    result["detail"]["loadavg_1m_before"] = load_before
    log(f"{bench_id}: done in {elapsed:.1f}s")
    return result


def emit(ctx, bench_id, result):
    line = {
        "id": bench_id,
        "value": result.get("value"),
        "unit": result.get("unit"),
        "target": result.get("target"),
        "met": bool(result.get("met")),
        "reference": result.get("reference"),
        "cores": ctx.cores,
    }
    if result.get("ratio") is not None:
        # The figure over the same-run reference (B1).
        line["ratio"] = result["ratio"]
    if result.get("detail"):
        line["detail"] = result["detail"]
    print(json.dumps(line), flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # py-amqp warns on stderr about late confirms of closed channels; noise here.
    logging.getLogger("amqp").setLevel(logging.ERROR)
    # SIGINT too: a shell starting the run in the background would leave it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    tmp = tempfile.mkdtemp(prefix="mirror-bench-")
    ctx = Context(args, tmp)
    log(
        f"benchmarks {','.join(args.ids)} on {ctx.cores} core(s), "
        f"{'PostgreSQL' if args.postgres else 'SQLite'}, work dir {tmp}"
    )
    started = time.monotonic()
    errors = 0
    interrupted = False
    try:
        for bench_id in args.ids:
            if bench_id in ("B5", "B6", "B7", "B8"):
                # B5-B8 measure meshes of their own; nothing else may run meanwhile.
                ctx.close_shared()
            result = run_one(ctx, bench_id)
            errors += "error" in (result.get("detail") or {})
            emit(ctx, bench_id, result)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: cleaning up")
    finally:
        # A second Ctrl+C must not leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ctx.cleanup()
        if args.keep or errors:
            log(f"kept {tmp} (mesh logs)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"total {time.monotonic() - started:.1f}s")
    if interrupted:
        return 130
    # A missed target is a figure, not a failure; a benchmark that broke is.
    return 1 if errors else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Abandoned benchmark threads (daemon) must not keep the interpreter alive.
    os._exit(code)
