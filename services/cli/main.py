"""``mirror``: parse the command line and run the command's handler.

Every parser carries its handler as ``args.handler(config, args)``: the daemon
commands (``daemons.py``), the user commands (``projects.py``, ``jobs.py``, ``users.py``,
``download.py``, run through ``session.command``) and ``mirror demo``.
"""

import argparse
import logging
import os
import sys

from services.cli import daemons
from services.cli.errors import fail
from services.cli.jobs import (
    job_logs,
    job_status,
    kill_jobs,
    list_jobs,
    list_machines,
    remove_jobs,
    watch_jobs,
)
from services.cli.manage import (
    get,
    machine_forget,
    package_rm,
    project_add,
    project_rm,
    results,
)
from services.cli.projects import (
    dispatch_jobs,
    package_add,
    package_list,
    project_create,
    project_list,
    submit_script,
)
from services.cli.session import command
from services.cli.sweeps import add_sweep_commands
from services.cli.users import user_add, user_list, user_passwd, user_revoke, user_token
from services.config import ConfigError, load_config


def cmd_demo(config, args):
    """``mirror demo``, from ``demo.py``."""
    # The demo loads nameko, eventlet and kombu at import; the daemon commands
    # must monkey-patch before those load, so it is imported only when it runs.
    from services.cli import demo

    demo.cmd_demo(config, args)


def global_options():
    """``--config`` and ``--log-level`` for a command's own parser: given after the command too."""
    options = argparse.ArgumentParser(add_help=False)
    # Not given after the command: the value given before it (or its default) stands.
    options.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    options.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return options


def add_parser(sub, name, **kwargs):
    """``sub.add_parser(name, ...)`` that also takes the global options after the command."""
    return sub.add_parser(name, parents=[global_options()], **kwargs)


def parse_args(argv):
    """The ``mirror`` arguments; ``args.handler(config, args)`` runs the command."""
    parser = argparse.ArgumentParser(
        prog="mirror",
        description="Mirror job mesh: nameko services over RabbitMQ.",
    )
    parser.add_argument(
        "--config", help="YAML config file (default config/mirror.yaml or $MIRROR_CONFIG)"
    )
    parser.add_argument("--log-level", default=os.environ.get("MIRROR_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_daemon_commands(sub)
    add_user_commands(sub)
    args, extra = parser.parse_known_args(argv)
    # argparse takes a command's positional words in one run: those after an
    # option (mirror get 7 --all DEST) come back as extras; a command that
    # collects ``words`` gets them, any other extra is an error as usual.
    if extra and isinstance(getattr(args, "words", None), list):
        if any(word.startswith("-") for word in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.words += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def add_daemon_commands(sub):
    """Add the commands that run parts of the mesh, and ``demo``."""
    central = add_parser(sub, "central", help="the central services and the reconciler (database)")
    central.set_defaults(handler=daemons.cmd_central)
    agent = add_parser(sub, "agent", help="the services of one resource machine")
    agent.add_argument("--rid", type=int, help="resource machine id (default AGENT.rid)")
    agent.add_argument(
        "--autorun", action="store_true", help="run queued jobs alone (DEBUG.autorun_job)"
    )
    agent.add_argument("--slots", type=int, help="cores this machine offers (default AGENT.slots)")
    agent.add_argument("--tags", help="comma-separated machine tags (default AGENT.tags)")
    agent.add_argument("--name", help="the machine's name (default AGENT.name, or <host>-<rid>)")
    agent.set_defaults(handler=daemons.cmd_agent)
    gateway = add_parser(sub, "gateway", help="the HTTP gateway (/proxy/<service>-<method>)")
    gateway.set_defaults(handler=daemons.cmd_gateway)
    ftp = add_parser(sub, "ftp", help="the file server (pyftpdlib, its own process)")
    ftp.set_defaults(handler=daemons.cmd_ftp)
    up = add_parser(
        sub, "up", help="all of the above on this machine, one agent (rid 1) with autorun"
    )
    up.add_argument("--no-autorun", action="store_true", help="leave the agent in manual mode")
    up.set_defaults(handler=daemons.cmd_up)
    demo = add_parser(sub, "demo", help="run the bundled demo sweep and show its results")
    demo.add_argument(
        "--up", action="store_true", help="start `mirror up` first if no mesh answers"
    )
    demo.add_argument(
        "--exit", action="store_true", help="stop the mesh it started once the sweep ends"
    )
    demo.set_defaults(handler=cmd_demo)
    migrate = add_parser(sub, "migrate", help="bring the database schema up to date")
    migrate.set_defaults(handler=daemons.cmd_migrate)


def add_user_commands(sub):
    """Add the user commands (projects, packages, jobs, logs, results, machines)."""
    project = add_parser(sub, "project", help="create and list projects")
    psub = project.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = add_parser(psub, "create", help="create a project from every file of a directory")
    create.add_argument("name", metavar="NAME")
    create.add_argument("directory", metavar="DIR", help="uploaded recursively, relative names")
    create.add_argument("--description", default="")
    create.add_argument(
        "--para",
        default=None,
        metavar="FILE",
        help="parameter file checked before creating (default: para.xml, if present)",
    )
    create.add_argument(
        "--package",
        type=int,
        metavar="C_ID",
        help="also check its placeholders against the parameter file, as dispatch does",
    )
    create.set_defaults(handler=command(project_create))
    add_parser(psub, "list", help="list the projects").set_defaults(handler=command(project_list))
    padd = add_parser(psub, "add", help="add or replace files of a project")
    padd.add_argument("p_id", type=int, metavar="P_ID")
    padd.add_argument(
        "files", nargs="+", metavar="FILE", help="stored under its name; a directory: its files"
    )
    padd.set_defaults(handler=command(project_add))
    prm = add_parser(psub, "rm", help="delete projects, their files and their finished jobs")
    prm.add_argument("p_ids", type=int, nargs="+", metavar="P_ID")
    prm.set_defaults(handler=command(project_rm))

    package = add_parser(sub, "package", help="register and list calculation packages")
    ksub = package.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = add_parser(ksub, "add", help="register a calculation package (zip or directory)")
    add.add_argument("path", metavar="ZIP")
    add.add_argument("--name", help="package name (default: the file name without .zip)")
    add.set_defaults(handler=command(package_add))
    add_parser(ksub, "list", help="list the packages").set_defaults(handler=command(package_list))
    krm = add_parser(ksub, "rm", help="delete packages no unfinished job uses")
    krm.add_argument("c_ids", type=int, nargs="+", metavar="C_ID")
    krm.set_defaults(handler=command(package_rm))

    dispatch = add_parser(sub, "dispatch", help="one job per state of a project's parameter file")
    dispatch.add_argument("p_id", type=int, metavar="P_ID")
    dispatch.add_argument("c_id", type=int, metavar="C_ID")
    dispatch.add_argument("--para", default="para.xml", metavar="FILE", help="parameter file")
    dispatch.add_argument("--rid", type=int, help="run every job on this resource machine")
    dispatch.add_argument("--tags", help="comma-separated tags a machine must have")
    dispatch.add_argument("--watch", action="store_true", help="show the sweep until it ends")
    dispatch.set_defaults(handler=command(dispatch_jobs))

    submit = add_parser(sub, "submit", help="run a shell script as a one-step job")
    what = submit.add_mutually_exclusive_group(required=True)
    what.add_argument("script", nargs="?", metavar="SCRIPT", help="script file, or - for stdin")
    what.add_argument("-c", "--command", dest="inline", metavar="TEXT", help="script text")
    submit.add_argument("--name", default="")
    submit.add_argument("--ncpus", type=int, default=1)
    submit.add_argument("--time-limit", type=float, metavar="MINUTES")
    submit.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    submit.add_argument("--cwd", help="working directory on the machine")
    submit.add_argument("--rid", type=int)
    submit.add_argument("--preferred", metavar="MACHINE", help="machine name to prefer")
    submit.add_argument("--tags", help="comma-separated tags a machine must have")
    submit.set_defaults(handler=command(submit_script))

    jobs = add_parser(sub, "jobs", help="list jobs, newest first")
    jobs.add_argument("--state", help="state(s), comma-separated (e.g. RUNNING,QUEUED)")
    jobs.add_argument("--rid", type=int, help="jobs of this resource machine")
    jobs.add_argument("--project", type=int, metavar="P_ID", help="jobs of this project")
    jobs.add_argument("--limit", type=int, default=100)
    jobs.set_defaults(handler=command(list_jobs))

    status = add_parser(sub, "status", help="a job's details, steps and URLs")
    status.add_argument("job_id", type=int, metavar="ID")
    status.set_defaults(handler=command(job_status))

    watch = add_parser(sub, "watch", help="live progress of jobs until they all end")
    watch.add_argument("job_ids", type=int, nargs="+", metavar="ID")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    watch.set_defaults(handler=command(watch_jobs))

    logs = add_parser(sub, "logs", help="a job step's stdout and stderr")
    logs.add_argument("job_id", type=int, metavar="ID")
    logs.add_argument("--follow", "-f", action="store_true", help="go on until the job ends")
    logs.add_argument("--step", metavar="S", help="step id (default: the current or last one)")
    logs.set_defaults(handler=command(job_logs))

    kill = add_parser(sub, "kill", help="stop jobs")
    kill.add_argument("job_ids", type=int, nargs="+", metavar="ID")
    kill.set_defaults(handler=command(kill_jobs))

    rm = add_parser(sub, "rm", help="delete jobs, their directories and published files")
    rm.add_argument("job_ids", type=int, nargs="+", metavar="ID")
    rm.add_argument("--force", action="store_true", help="kill jobs that have not ended first")
    rm.set_defaults(handler=command(remove_jobs))

    fetch = add_parser(
        sub,
        "get",
        help="download a job's results (DEST/<key>/...), its directory (--all), or a project's",
    )
    # One list, split by the handler: an optional ID before DEST cannot be told
    # apart by argparse once an option stands between them (get 7 --all DEST).
    fetch.add_argument("words", nargs="+", metavar="[ID] DEST")
    fetch.add_argument(
        "--project", type=int, metavar="P_ID", help="every job's results, in DEST/<state name>/"
    )
    fetch.add_argument(
        "--all",
        action="store_true",
        help="the whole directory of an ended job (failed or killed ones too), size-capped",
    )
    fetch.set_defaults(handler=command(get))

    table = add_parser(sub, "results", help="a project's parameters against its results")
    table.add_argument("p_id", type=int, metavar="P_ID")
    table.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table")
    table.add_argument("--urls", action="store_true", help="show URLs, do not read small files")
    table.set_defaults(handler=command(results))

    add_parser(sub, "machines", help="the resource machines").set_defaults(
        handler=command(list_machines)
    )
    machine = add_parser(sub, "machine", help="manage resource machines: forget")
    msub = machine.add_subparsers(dest="action", required=True, metavar="ACTION")
    forget = add_parser(msub, "forget", help="remove decommissioned machines (admins only)")
    forget.add_argument("rids", type=int, nargs="+", metavar="RID")
    forget.set_defaults(handler=command(machine_forget))
    add_sweep_commands(sub, add_parser, command)
    add_user_admin_commands(sub)


def add_user_admin_commands(sub):
    """Add ``mirror user``: the users who call through the gateway, and their tokens."""
    user = add_parser(sub, "user", help="users of the gateway: add, list, token, revoke, passwd")
    usub = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = add_parser(usub, "add", help="add a user; prints their bearer token once")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--admin", action="store_true", help="sees and acts on everything")
    add.set_defaults(handler=command(user_add))
    add_parser(usub, "list", help="list the users").set_defaults(handler=command(user_list))
    token = add_parser(usub, "token", help="a new token for a user (the old one stops working)")
    token.add_argument("name", metavar="NAME")
    token.set_defaults(handler=command(user_token))
    revoke = add_parser(usub, "revoke", help="refuse a user's token and password")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=command(user_revoke))
    passwd = add_parser(usub, "passwd", help="set a user's password (typed twice, or from stdin)")
    passwd.add_argument("name", metavar="NAME")
    passwd.set_defaults(handler=command(user_passwd))


def main(argv=None):
    """Parse, set up logging, load the configuration and run the command."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("nameko").setLevel(logging.WARNING)
    logging.getLogger("kombu").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        fail(str(exc))
    try:
        args.handler(config, args)
    except KeyboardInterrupt:
        pass
