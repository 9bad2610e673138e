"""The daemon commands of ``mirror``: central, agent, gateway, ftp, up, migrate.

``central``, ``agent`` and ``gateway`` monkey-patch (``services.runner.green``)
before anything loads nameko, kombu or SQLAlchemy, so those are imported inside
the commands; ``ftp`` runs unpatched (pyftpdlib needs epoll).
"""

import logging
import sys

from services.cli.broker import check_broker
from services.cli.errors import fail
from services.cli.localbroker import start_if_needed
from services.config import for_agent, masked
from services.runner import central_services, green, run_services, supervise

log = logging.getLogger("mirror")


def migrate(config):
    """Bring the database schema up to date, or exit with one line."""
    # SQLAlchemy and alembic load only for the commands that use the database,
    # and after green() in ``mirror central``.
    from db.migrate import upgrade
    from db.session import make_engine

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
    green()
    config = for_agent(config, args.rid if args.rid is not None else config["AGENT"]["rid"])
    if args.autorun:
        config["DEBUG"]["autorun_job"] = True
    if args.slots:
        config["AGENT"]["slots"] = args.slots
    if args.tags is not None:
        config["AGENT"]["tags"] = [t for t in args.tags.split(",") if t]
    if args.name:
        config["AGENT"]["name"] = args.name
    check_broker(config)
    # The agent services load nameko: only once green() has patched.
    from services.agent.services import agent_services

    run_services(agent_services(config), config)


def cmd_gateway(config, args):
    green()
    # The gateway loads nameko and werkzeug: only once green() has patched.
    from gateway import GatewayService, check_bind, gateway_config

    try:
        check_bind(config)
    except ValueError as exc:
        fail(str(exc))
    check_broker(config)
    run_services([GatewayService], gateway_config(config))


def cmd_ftp(config, args):
    # pyftpdlib is needed by this command alone.
    from services.ftpserver import check_bind, serve

    try:
        check_bind(config["FTP"])
    except ValueError as exc:
        fail(str(exc))
    serve(config["FTP"])


def cmd_migrate(config, args):
    migrate(config)
    print(f"database at {masked(config['DB_URL'])} is up to date")


def child_command(args, *extra):
    """The command line of a ``mirror`` child process with this one's --config and --log-level."""
    cmd = [sys.executable, "-m", "services.cli"]
    if args.config:
        cmd += ["--config", args.config]
    cmd += ["--log-level", args.log_level]
    return cmd + list(extra)


def cmd_up(config, args):
    """Run every part as a child process; stop them all on Ctrl+C, SIGTERM or a death.

    With no broker at a local AMQP_URI and RabbitMQ installed, a private node
    runs first, at that address, and stops last (``localbroker``).
    """
    broker = start_if_needed(config)
    try:
        check_broker(config)
        # Migrate once here so that central starts on a ready schema.
        migrate(config)
        agent = ["agent", "--rid", "1"] + ([] if args.no_autorun else ["--autorun"])
        parts = {"ftp": ["ftp"], "central": ["central"], "agent": agent, "gateway": ["gateway"]}
        address = config["GATEWAY"]["address"]
        banner = (
            f"mesh up: gateway http://{address}, "
            f"file server ftp://{config['FTP']['host']}:{config['FTP']['port']}"
        )
        if broker is not None:
            banner += f", private broker {broker.node}"
        supervise({name: child_command(args, *extra) for name, extra in parts.items()}, banner)
    finally:
        if broker is not None:
            broker.stop()
