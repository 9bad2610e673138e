"""The ``mirror`` command: start the central services, an agent, the gateway, the file server."""

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import warnings

log = logging.getLogger("mirror")

COMMANDS = ("central", "agent", "gateway", "ftp", "up", "demo", "migrate")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="mirror",
        description="Mirror job mesh: nameko services over RabbitMQ.",
    )
    parser.add_argument(
        "--config", help="YAML config file (default config/mirror.yaml or $MIRROR_CONFIG)"
    )
    parser.add_argument("--log-level", default=os.environ.get("MIRROR_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("central", help="the central services and the reconciler (database)")
    agent = sub.add_parser("agent", help="the services of one resource machine")
    agent.add_argument("--rid", type=int, help="resource machine id (default AGENT.rid)")
    agent.add_argument(
        "--autorun", action="store_true", help="run queued jobs alone (DEBUG.autorun_job)"
    )
    agent.add_argument("--slots", type=int, help="cores this machine offers (default AGENT.slots)")
    agent.add_argument("--tags", help="comma-separated machine tags (default AGENT.tags)")
    sub.add_parser("gateway", help="the HTTP gateway (/proxy/<service>-<method>)")
    sub.add_parser("ftp", help="the file server (pyftpdlib, its own process)")
    up = sub.add_parser(
        "up", help="all of the above on this machine, one agent (rid 1) with autorun"
    )
    up.add_argument("--no-autorun", action="store_true", help="leave the agent in manual mode")
    demo = sub.add_parser("demo", help="run the bundled demo sweep and show its results")
    demo.add_argument(
        "--up", action="store_true", help="start `mirror up` first if no mesh answers"
    )
    demo.add_argument(
        "--exit", action="store_true", help="stop the mesh it started once the sweep ends"
    )
    sub.add_parser("migrate", help="bring the database schema up to date")
    from services.cli import add_commands

    add_commands(sub)
    return parser.parse_args(argv)


def fail(message, code=2):
    print(f"mirror: {message}", file=sys.stderr)
    sys.exit(code)


def check_broker(config, timeout=5):
    """Exit with one clear line when the broker cannot be reached."""
    from kombu import Connection

    from services.config import masked

    uri = config["AMQP_URI"]
    try:
        with Connection(uri, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure gets the same one line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(
            f"cannot reach the RabbitMQ broker at {masked(uri)} ({reason}); "
            "start one with `rabbitmq-server -detached` (or `docker compose up -d rabbitmq`) "
            "or point AMQP_URI at a running broker"
        )


def green():
    """Monkey-patch for the nameko commands (never for the FTP server: it needs epoll)."""
    # eventlet announces its own deprecation on import; nameko 2 needs it all the same.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()
    import psycogreen.eventlet

    psycogreen.eventlet.patch_psycopg()


STOP_GRACE = 15


def run_services(classes, config, grace=STOP_GRACE):
    """Run nameko services until SIGTERM or Ctrl+C; always exit within ``2 * grace`` seconds.

    A graceful stop waits for running workers; one stuck on an unreachable
    peer must not keep the process alive, so past ``grace`` the runner is
    killed, and past twice that SIGALRM's default action ends the process.
    """
    import errno

    import eventlet
    from nameko.runners import ServiceRunner

    runner = ServiceRunner(config)
    for cls in classes:
        runner.add_service(cls)

    def stop_within_grace():
        stopping = eventlet.spawn(runner.stop)
        try:
            with eventlet.Timeout(grace):
                stopping.wait()
        except eventlet.Timeout:
            log.warning("services did not stop within %ss; killing them", grace)
            runner.kill()

    def shutdown(signum, frame):
        # Signal handlers run on the main loop: hand the stop to a green thread.
        signal.alarm(2 * grace)
        eventlet.spawn_n(stop_within_grace)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("starting %s", ", ".join(cls.name for cls in classes))
    runner.start()
    waiting = eventlet.spawn(runner.wait)
    while True:
        try:
            waiting.wait()
            return
        except OSError as exc:
            # A signal interrupting the hub's wait surfaces here; keep waiting.
            if exc.errno != errno.EINTR:
                raise


def central_services(config):
    from services.central.calcpackage import CalcPackageService
    from services.central.job import JobService
    from services.central.jobdispatch import JobDispatchService
    from services.central.jobgetdata import JobGetDataService
    from services.central.machine import machine_service
    from services.central.project import ProjectService

    return [
        ProjectService,
        CalcPackageService,
        JobDispatchService,
        JobService,
        JobGetDataService,
        machine_service(config),
    ]


def migrate(config):
    from db.migrate import upgrade
    from db.session import make_engine
    from services.config import masked

    engine = make_engine(config["DB_URL"])
    try:
        upgrade(engine)
    except Exception as exc:  # noqa: BLE001
        fail(f"cannot migrate the database at {masked(config['DB_URL'])}: {exc}")
    finally:
        engine.dispose()


def cmd_central(config, args):
    green()
    check_broker(config)
    migrate(config)
    run_services(central_services(config), config)


def cmd_agent(config, args):
    from services.config import for_agent

    green()
    config = for_agent(config, args.rid if args.rid is not None else config["AGENT"]["rid"])
    if args.autorun:
        config["DEBUG"]["autorun_job"] = True
    if args.slots:
        config["AGENT"]["slots"] = args.slots
    if args.tags is not None:
        config["AGENT"]["tags"] = [t for t in args.tags.split(",") if t]
    check_broker(config)
    from services.agent.services import agent_services

    run_services(agent_services(config), config)


def cmd_gateway(config, args):
    green()
    from gateway import GatewayService, check_bind, gateway_config

    try:
        check_bind(config)
    except ValueError as exc:
        fail(str(exc))
    check_broker(config)
    run_services([GatewayService], gateway_config(config))


def cmd_ftp(config, args):
    from services.ftpserver import serve

    serve(config["FTP"])


def cmd_migrate(config, args):
    from services.config import masked

    migrate(config)
    print(f"database at {masked(config['DB_URL'])} is up to date")


def child_command(args, *extra):
    cmd = [sys.executable, "-m", "services.runner"]
    if args.config:
        cmd += ["--config", args.config]
    cmd += ["--log-level", args.log_level]
    return cmd + list(extra)


def cmd_up(config, args):
    """Run every part as a child process; stop them all on Ctrl+C, SIGTERM or a death."""
    check_broker(config)
    # Migrate once here so that central starts on a ready schema.
    migrate(config)
    agent = ["agent", "--rid", "1"] + ([] if args.no_autorun else ["--autorun"])
    parts = {"ftp": ["ftp"], "central": ["central"], "agent": agent, "gateway": ["gateway"]}
    children = {}
    stopping = []

    def stop(signum=None, frame=None):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for name, extra in parts.items():
            children[name] = subprocess.Popen(child_command(args, *extra), start_new_session=True)
        address = config["GATEWAY"]["address"]
        log.info(
            "mesh up: gateway http://%s, file server ftp://%s:%s",
            address,
            config["FTP"]["host"],
            config["FTP"]["port"],
        )
        while not stopping:
            dead = [n for n, p in children.items() if p.poll() is not None]
            if dead:
                log.error(
                    "%s exited with code %s; stopping the mesh",
                    dead[0],
                    children[dead[0]].returncode,
                )
                stopping.append("child")
                break
            time.sleep(0.2)
    finally:
        for proc in children.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 15
        for proc in children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if stopping and stopping[0] == "child":
        sys.exit(1)


def cmd_demo(config, args):
    from services.demo import run_demo

    # No monkey-patching here: standalone proxies need none, and unpatched,
    # Ctrl+C and SIGTERM reach the clean-up that stops the mesh it started.
    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    check_broker(config)
    sys.exit(run_demo(config, args, start_mesh=lambda: child_command(args, "up")))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("nameko").setLevel(logging.WARNING)
    logging.getLogger("kombu").setLevel(logging.WARNING)
    from services.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        fail(str(exc))
    # The user commands (services/cli.py) carry their own handler.
    handler = getattr(args, "handler", None) or globals()[f"cmd_{args.command}"]
    try:
        handler(config, args)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
