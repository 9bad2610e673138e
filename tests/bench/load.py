"""Load generator of B3, run as its own process (real OS threads, no eventlet).

``python -m tests.bench.load http --url URL --expect JSON --threads N --duration S``
``python -m tests.bench.load rpc --amqp URI --exchange X --job-id N --expect JSON ...``

Each thread opens its own client (a keep-alive HTTP connection, or a
``ClusterRpcProxy``) and makes one warm-up call; then the process prints
``ready`` and waits for ``go`` on stdin, runs for ``duration`` seconds, and
prints one JSON line: ``calls`` (answered within the window), ``errors``,
``window``, ``latencies_ms``.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse
import warnings


class HttpClient:
    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.conn = None
        self.reconnects = -1

    def call(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.reconnects += 1
        try:
            self.conn.request("GET", self.path)
            resp = self.conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.will_close:
            self.close()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
        return json.loads(body)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class RpcClient:
    def __init__(self, amqp, exchange, job_id):
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        from nameko.standalone.rpc import ClusterRpcProxy

        self.job_id = job_id
        self.proxy = ClusterRpcProxy({"AMQP_URI": amqp, "rpc_exchange": exchange}, timeout=30)
        self.cluster = self.proxy.start()
        self.reconnects = 0

    def call(self):
        return self.cluster.job.getrid(job_id=self.job_id)

    def close(self):
        self.proxy.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.load")
    parser.add_argument("mode", choices=("http", "rpc"))
    parser.add_argument("--url")
    parser.add_argument("--amqp")
    parser.add_argument("--exchange")
    parser.add_argument("--job-id", type=int)
    parser.add_argument("--expect", required=True, help="the JSON answer every call must give")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args(argv)
    expect = json.loads(args.expect)

    def make():
        if args.mode == "http":
            return HttpClient(args.url)
        return RpcClient(args.amqp, args.exchange, args.job_id)

    clients = [make() for _ in range(args.threads)]
    for client in clients:
        answer = client.call()
        if answer != expect:
            raise SystemExit(f"warm-up call answered {answer!r}, expected {expect!r}")
    go = threading.Event()
    stop_at = [0.0]
    results = []

    def work(client):
        go.wait()
        latencies, errors, messages = [], 0, []
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                break
            try:
                answer = client.call()
            except Exception as exc:  # noqa: BLE001 - counted, the load goes on
                errors += 1
                if len(messages) < 3:
                    messages.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            t1 = time.perf_counter()
            if answer != expect:
                errors += 1
                if len(messages) < 3:
                    messages.append(f"answered {answer!r}"[:200])
                continue
            if t1 <= stop_at[0]:
                latencies.append(round((t1 - t0) * 1000, 3))
        results.append((latencies, errors, messages, client.reconnects))

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    started = time.perf_counter()
    stop_at[0] = started + args.duration
    go.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies = [x for r in results for x in r[0]]
    out = {
        "calls": len(latencies),
        "errors": sum(r[1] for r in results),
        "messages": [m for r in results for m in r[2]][:3],
        "reconnects": sum(r[3] for r in results),
        "window": args.duration,
        "elapsed": elapsed,
        "latencies_ms": latencies,
    }
    print(json.dumps(out), flush=True)
    for client in clients:
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
