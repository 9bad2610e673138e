"""The user commands on sweeps: ``sweeps``, ``sweep ID``, ``sweep kill|retry|rm|throttle ID``."""

import time

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from services.cli.errors import CommandError, fail
from services.cli.rendering import STATE_STYLES, state_text, table, text, when
from services.common.jobstates import FINAL, STATES

BAR_WIDTH = 40
ACTIONS = ("kill", "retry", "rm", "throttle")


def list_sweeps(client, args, out):
    sweeps = client.sweeps(p_id=args.project, limit=args.limit)
    rows = table("SWEEP", "PROJECT", "KIND", "JOBS", "DONE", *STATES, "THROTTLE", "CREATED")
    for sweep in sweeps:
        rows.add_row(
            text(sweep["sweep_id"]),
            text(sweep["p_id"]),
            text(sweep["kind"]),
            text(sweep["total"]),
            text(sweep["done"]),
            *(text(sweep["states"][s]) for s in STATES),
            text(sweep["max_running"] or None),
            text(when(sweep["created"])),
        )
    out.print(rows)
    out.print(f"{len(sweeps)} sweep(s)", markup=False)


def bar(count, total):
    filled = round(BAR_WIDTH * count / total) if total else 0
    return "#" * filled + "." * (BAR_WIDTH - filled)


def seconds(value):
    if value is None:
        return "-"
    value = int(value)
    return f"{value // 3600}h{value % 3600 // 60:02d}m{value % 60:02d}s"


def render(sweep):
    """The view of ``mirror sweep ID``: a bar per state, progress, and the failure summary."""
    total = sweep["total"]
    head = Text(f"sweep {sweep['sweep_id']}  ({sweep['kind']}, project {sweep['p_id']})  ")
    head.append(f"{sweep['done']}/{total} done")
    if sweep["max_running"]:
        head.append(f"  at most {sweep['max_running']} running")
    bars = Table.grid(padding=(0, 2))
    for _ in range(3):
        bars.add_column()
    for state in STATES:
        count = sweep["states"][state]
        style = STATE_STYLES.get(state, "")
        bars.add_row(state_text(state), Text(bar(count, total), style=style), text(count))
    estimate = sweep["estimate"]
    facts = Text(
        f"first submit {when(sweep['first_submit']) or '-'}   "
        f"last end {when(sweep['last_end']) or '-'}   "
        f"mean job {seconds(estimate['mean_seconds'])}   "
        f"left about {seconds(estimate['remaining_seconds'])}"
    )
    parts = [head, bars, facts]
    failures = sweep["failures"]
    if failures["by_error"]:
        errors = table("FAILED", "ERROR")
        for item in failures["by_error"]:
            errors.add_row(text(item["count"]), text(item["error"]))
        parts.append(errors)
        params = table("PARAMETER", "VALUE", "FAILED", "JOBS", "RATE")
        for name, values in failures["by_parameter"].items():
            for row in values:
                if row["failed"]:
                    params.add_row(
                        text(name),
                        text(row["value"]),
                        text(row["failed"]),
                        text(row["jobs"]),
                        text(f"{row['rate']:.0%}"),
                    )
        parts.append(params)
    return Group(*parts)


def finished(sweep):
    return all(n == 0 for state, n in sweep["states"].items() if state not in FINAL)


def show_sweep(client, args, out):
    sweep = client.sweep(args.sweep_id)
    if not args.watch:
        out.print(render(sweep))
        return 0
    watch(client, args.sweep_id, out, args.interval)
    return 0


def watch(client, sweep_id, out, interval=1.0):
    """Redraw the sweep's view until every job of it has ended."""
    sweep = client.sweep(sweep_id)
    with Live(render(sweep), console=out, auto_refresh=False) as live:
        while not finished(sweep):
            time.sleep(interval)
            sweep = client.sweep(sweep_id)
            live.update(render(sweep), refresh=True)


def act_on_sweep(client, args, out):
    """``mirror sweep ACTION ID [...]``."""
    if args.action == "kill":
        ids = client.sweep_kill(args.sweep_id, where=args.where)
        out.print(f"sweep {args.sweep_id}: {len(ids)} job(s) stopped", markup=False)
    elif args.action == "retry":
        states = [s.strip().upper() for s in args.states.split(",") if s.strip()]
        ids = client.sweep_retry(args.sweep_id, states=states, where=args.where)
        out.print(f"sweep {args.sweep_id}: {len(ids)} job(s) queued again", markup=False)
    elif args.action == "rm":
        if args.where:
            raise CommandError("rm takes no --where: a sweep is deleted whole")
        done = client.sweep_delete(args.sweep_id, force=args.force)
        out.print(f"sweep {args.sweep_id} deleted with {done['deleted']} job(s)", markup=False)
    elif args.action == "throttle":
        if args.max_running is None:
            raise CommandError("throttle needs the most jobs to run at once: sweep throttle ID N")
        done = client.sweep_throttle(args.sweep_id, args.max_running)
        limit = done["max_running"] or "no limit"
        out.print(f"sweep {args.sweep_id}: at most {limit} running", markup=False)
    return 0


def add_sweep_commands(sub, add_parser, command):
    """Add ``mirror sweeps`` and ``mirror sweep``."""
    sweeps = add_parser(sub, "sweeps", help="list sweeps (one per dispatch), newest first")
    sweeps.add_argument("--project", type=int, metavar="P_ID", help="sweeps of this project")
    sweeps.add_argument("--limit", type=int, default=100)
    sweeps.set_defaults(handler=command(list_sweeps))

    sweep = add_parser(
        sub,
        "sweep",
        help="a sweep at a glance, or act on it: sweep ID | sweep kill|retry|rm|throttle ID",
    )
    sweep.add_argument("words", nargs="+", metavar="[ACTION] ID [N]")
    sweep.add_argument("--where", help="only jobs whose parameters match, e.g. 'alpha == 8'")
    sweep.add_argument(
        "--states", default="FAILED,KILLED", help="retry: the states to retry (comma-separated)"
    )
    sweep.add_argument("--force", action="store_true", help="rm: kill unfinished jobs first")
    sweep.add_argument("--watch", action="store_true", help="redraw until every job has ended")
    sweep.add_argument("--interval", type=float, default=1.0, help="seconds between redraws")
    sweep.set_defaults(handler=sweep_handler(command))


def sweep_handler(command):
    """The handler of ``mirror sweep``: the words read as ``ID`` or ``ACTION ID [N]``."""
    show, act = command(show_sweep), command(act_on_sweep)

    def handler(config, args):
        words = args.words
        action = words[0] if words[0] in ACTIONS else None
        rest = words[1:] if action else words
        wanted = 2 if action == "throttle" else 1
        if len(rest) != wanted or not all(w.lstrip("-").isdigit() for w in rest):
            usage = "sweep throttle ID N" if action == "throttle" else "sweep [ACTION] ID"
            fail(f"expected {usage}, got {' '.join(words)!r}")
        args.action, args.sweep_id = action, int(rest[0])
        args.max_running = int(rest[1]) if action == "throttle" else None
        return (act if action else show)(config, args)

    return handler
