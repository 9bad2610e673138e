"""B8's agent host: many resource machines in one process, each through the real agent code.

``python -m tests.bench.agent_host CONFIG FIRST_RID COUNT [--slots N]``

For each rid from ``FIRST_RID`` on, the configuration is the one ``mirror
agent --rid RID --autorun`` would use (``services.config.for_agent``), and the
machine's ``jobagent_<rid>`` service from ``services.agent.services.agent_services``
runs in a nameko ``ServiceRunner`` of its own: the heartbeat timer, the
start-up recovery, the autorun consumer of the machine's job queue, claims,
step runs and reports are the agent's own code. Only the per-machine stage
services (``jobdirbuild_<rid>`` ...) are left out: autorun never calls them,
and 7 idle RPC consumers a machine would only add broker connections.

One process rather than fifty: a real agent process costs about 60 MB of RSS
and its own interpreter start, which B8 measures and reports beside this
host's cost per machine. Runs until SIGTERM or SIGINT, then stops every
machine.
"""

import argparse
import errno
import logging
import signal
import sys

from services.runner import green


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.agent_host", description=__doc__)
    parser.add_argument("config", help="the mesh's mirror.yaml")
    parser.add_argument("first_rid", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--slots", type=int, default=1, help="slots of each machine")
    args = parser.parse_args(argv)
    if args.first_rid < 1 or args.count < 1 or args.slots < 1:
        parser.error("first_rid, count and --slots must each be at least 1")
    return args


def machine_config(config, rid, slots):
    """What ``mirror agent --rid RID --autorun --slots SLOTS`` would run with."""
    from services.config import for_agent

    config = for_agent(config, rid)
    config["DEBUG"]["autorun_job"] = True
    config["AGENT"]["slots"] = slots
    config["AGENT"]["name"] = f"b8-machine-{rid}"
    return config


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    green()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    from eventlet.event import Event
    from eventlet.greenpool import GreenPool
    from nameko.runners import ServiceRunner

    from services.agent.services import agent_services
    from services.config import load_config

    base = load_config(args.config)
    runners = []
    for rid in range(args.first_rid, args.first_rid + args.count):
        config = machine_config(base, rid, args.slots)
        runner = ServiceRunner(config)
        for cls in agent_services(config):
            if cls.name.startswith("jobagent_"):
                runner.add_service(cls)
        runners.append(runner)
    stop = Event()

    def on_signal(signum, frame):
        if not stop.ready():
            stop.send(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for runner in runners:
        runner.start()
    print(f"agent host: {len(runners)} machines started", flush=True)
    while not stop.ready():
        try:
            stop.wait()
        except OSError as exc:
            # A signal interrupting the hub's wait surfaces here; keep waiting.
            if exc.errno != errno.EINTR:
                raise
    # SIGALRM's default action ends a stop that hangs on a broken connection.
    signal.alarm(30)
    # All at once: one after the other, fifty machines' stops add up past the alarm.
    stopping = GreenPool(len(runners))
    for runner in runners:
        stopping.spawn(runner.stop)
    stopping.waitall()
    print(f"agent host: {len(runners)} machines stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
