"""``mirror demo``: run the bundled demo sweep against a mesh and show what comes back."""

import base64
import json
import signal
import subprocess
import sys
import time
from argparse import Namespace

from nameko.exceptions import RpcTimeout, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from adapters.bundled import package_zip, project_files
from services.cli.broker import check_broker
from services.cli.daemons import child_command
from services.cli.jobs import watch_jobs
from services.cli.localbroker import answers, server_command, wanted
from services.cli.rendering import console
from services.client import Mirror
from services.common.jobstates import COMPLETED


def mesh_answers(cluster):
    try:
        return cluster.machine.list()[0] == 0
    except (RpcTimeout, UnknownService):
        return False


def call(cluster, service, method, **kwargs):
    code, value = getattr(getattr(cluster, service), method)(**kwargs)
    if code != 0:
        raise RuntimeError(f"{service}.{method} failed: {value}")
    return value


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


def dashboard_url(config):
    """The dashboard's address: the gateway's, with a wildcard bind read as this machine."""
    host, _, port = str(config["GATEWAY"]["address"]).rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/"


def private_broker_possible(config):
    """True when nothing answers at a local broker address and RabbitMQ is installed."""
    return wanted(config) is not None and server_command() is not None


def run_demo(config, args, start_mesh):
    """Register the demo, dispatch its sweep, follow it to the end, print the results."""
    rpc_config = {"AMQP_URI": config["AMQP_URI"], "rpc_exchange": config["rpc_exchange"]}
    child = None
    if args.up and private_broker_possible(config):
        # No broker yet: `mirror up` starts a private one along with the mesh.
        host, port = wanted(config)
        print("starting the mesh and a private broker (mirror up) ...")
        child = subprocess.Popen(start_mesh(), start_new_session=True)
        wait_until(lambda: child.poll() is None and answers(host, port), 90, "the private broker")
    else:
        with ClusterRpcProxy(rpc_config, timeout=3) as cluster:
            if not mesh_answers(cluster):
                if not args.up:
                    print(
                        "mirror demo: no mesh answers; "
                        "start one with `mirror up` or use `mirror demo --up`"
                    )
                    return 2
                print("starting the mesh (mirror up) ...")
                child = subprocess.Popen(start_mesh(), start_new_session=True)
    try:
        with ClusterRpcProxy(rpc_config, timeout=30) as cluster:
            wait_until(
                lambda: child is None or child.poll() is None and mesh_answers(cluster),
                90,
                "the mesh",
            )
            wait_until(
                lambda: any(m["online"] for m in call(cluster, "machine", "list")),
                60,
                "a resource machine",
            )
            c_id = call(
                cluster, "calcpackage", "new", name="demo", content=encode(package_zip("demo"))
            )
            p_id = call(cluster, "project", "new", name="demo", description="bundled demo sweep")
            for name, data in project_files("demo").items():
                call(cluster, "project", "upload", p_id=p_id, name=name, content=encode(data))
            ids = call(cluster, "jobdispatch", "do", p_id=p_id, c_id=c_id)
            print(f"dispatched project {p_id} with package {c_id}: jobs {ids}")
            print(f"watch them in the dashboard: {dashboard_url(config)}")
            autorun = any(m["autorun"] for m in call(cluster, "machine", "list"))
            if not autorun:
                print(
                    "no machine runs jobs alone (autorun off): drive them with jobdirbuild_<rid>.do ..."
                )
                return 0
            follow(config, ids)
            failed = 0
            for job_id in ids:
                job = call(cluster, "job", "query", job_id=job_id)
                data = call(cluster, "jobgetdata", "do", job_id=job_id)
                failed += job["state"] != COMPLETED
                print(
                    f"\njob {job_id} ({job['state_name']}): {job['state']}"
                    + (f" - {job['error']}" if job["error"] else "")
                )
                print(json.dumps(data, indent=2))
        gateway = config["GATEWAY"]["address"]
        print(f"\nthe mesh answers on http://{gateway}/proxy/<service>-<method>, e.g.")
        print(f"  curl 'http://{gateway}/proxy/jobgetdata-do?job_id={ids[0]}'")
        print(f"dashboard: {dashboard_url(config)}  (API described at {dashboard_url(config)}docs)")
        if child is not None and not args.exit:
            print("mesh running; Ctrl+C stops it")
            child.wait()
        return 1 if failed else 0
    except KeyboardInterrupt:
        return 130
    finally:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            child.wait(30)


def follow(config, ids):
    """Live progress bars per job (``mirror watch``) until every job has ended."""
    with Mirror(config["AMQP_URI"], config["rpc_exchange"]) as client:
        watch_jobs(client, Namespace(job_ids=ids, interval=0.5), console())


def encode(data):
    return base64.b64encode(data).decode()


def cmd_demo(config, args):
    """``mirror demo``: exit with the code of ``run_demo``."""

    # No monkey-patching here: standalone proxies need none, and unpatched,
    # Ctrl+C and SIGTERM reach the clean-up that stops the mesh it started.
    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    if not (args.up and private_broker_possible(config)):
        check_broker(config)
    sys.exit(run_demo(config, args, start_mesh=lambda: child_command(args, "up")))
