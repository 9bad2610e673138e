"""The user commands of ``mirror``: projects, packages, jobs, logs, results, machines.

``add_commands(sub)`` registers them on the ``mirror`` argument parser; each
parser carries its handler as ``args.handler(config, args)``. Every handler
checks the broker first (one line and exit code 2 when it cannot be reached),
prints an error as one ``mirror: ...`` line on stderr with exit code 1, and
never monkey-patches eventlet: the standalone RPC proxy does not need it.
"""

import ftplib
import os
import posixpath
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from services.common.jobstates import FINAL

STATE_STYLES = {
    "QUEUED": "dim",
    "PREPARING": "cyan",
    "READY": "cyan",
    "RUNNING": "blue",
    "COMPLETED": "green",
    "FAILED": "red",
    "KILLED": "yellow",
}


class CommandError(Exception):
    """A user-facing error of a command (printed as ``mirror: message``)."""


# -- registration -------------------------------------------------------------------------
def add_commands(sub):
    """Add the user commands to the ``mirror`` subparsers ``sub``."""
    project = sub.add_parser("project", help="create and list projects")
    psub = project.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = psub.add_parser("create", help="create a project from every file of a directory")
    create.add_argument("name", metavar="NAME")
    create.add_argument("directory", metavar="DIR", help="uploaded recursively, relative names")
    create.add_argument("--description", default="")
    create.set_defaults(handler=command(project_create))
    psub.add_parser("list", help="list the projects").set_defaults(handler=command(project_list))

    package = sub.add_parser("package", help="register and list calculation packages")
    ksub = package.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = ksub.add_parser("add", help="register a calculation package (zip or directory)")
    add.add_argument("path", metavar="ZIP")
    add.add_argument("--name", help="package name (default: the file name without .zip)")
    add.set_defaults(handler=command(package_add))
    ksub.add_parser("list", help="list the packages").set_defaults(handler=command(package_list))

    dispatch = sub.add_parser("dispatch", help="one job per state of a project's parameter file")
    dispatch.add_argument("p_id", type=int, metavar="P_ID")
    dispatch.add_argument("c_id", type=int, metavar="C_ID")
    dispatch.add_argument("--para", default="para.xml", metavar="FILE", help="parameter file")
    dispatch.add_argument("--rid", type=int, help="run every job on this resource machine")
    dispatch.add_argument("--tags", help="comma-separated tags a machine must have")
    dispatch.set_defaults(handler=command(dispatch_jobs))

    submit = sub.add_parser("submit", help="run a shell script as a one-step job")
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

    jobs = sub.add_parser("jobs", help="list jobs, newest first")
    jobs.add_argument("--state", help="state(s), comma-separated (e.g. RUNNING,QUEUED)")
    jobs.add_argument("--rid", type=int, help="jobs of this resource machine")
    jobs.add_argument("--project", type=int, metavar="P_ID", help="jobs of this project")
    jobs.add_argument("--limit", type=int, default=100)
    jobs.set_defaults(handler=command(list_jobs))

    status = sub.add_parser("status", help="a job's details, steps and URLs")
    status.add_argument("job_id", type=int, metavar="ID")
    status.set_defaults(handler=command(job_status))

    watch = sub.add_parser("watch", help="live progress of jobs until they all end")
    watch.add_argument("job_ids", type=int, nargs="+", metavar="ID")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    watch.set_defaults(handler=command(watch_jobs))

    logs = sub.add_parser("logs", help="a job step's stdout and stderr")
    logs.add_argument("job_id", type=int, metavar="ID")
    logs.add_argument("--follow", "-f", action="store_true", help="go on until the job ends")
    logs.add_argument("--step", metavar="S", help="step id (default: the current or last one)")
    logs.set_defaults(handler=command(job_logs))

    kill = sub.add_parser("kill", help="stop jobs")
    kill.add_argument("job_ids", type=int, nargs="+", metavar="ID")
    kill.set_defaults(handler=command(kill_jobs))

    rm = sub.add_parser("rm", help="delete jobs, their directories and published files")
    rm.add_argument("job_ids", type=int, nargs="+", metavar="ID")
    rm.add_argument("--force", action="store_true", help="kill jobs that have not ended first")
    rm.set_defaults(handler=command(remove_jobs))

    get = sub.add_parser("get", help="download a job's results (DEST/<key>/...)")
    get.add_argument("job_id", type=int, metavar="ID")
    get.add_argument("dest", metavar="DEST")
    get.set_defaults(handler=command(get_results))

    sub.add_parser("machines", help="the resource machines").set_defaults(
        handler=command(list_machines)
    )


def command(fn):
    """Wrap ``fn(client, args, console)`` as a ``mirror`` handler ``(config, args)``."""

    def handler(config, args):
        from services.client import Mirror, MirrorError
        from services.runner import check_broker

        check_broker(config)
        timeout = (config.get("RPC") or {}).get("timeout", 30)
        try:
            with Mirror(config["AMQP_URI"], config["rpc_exchange"], timeout=timeout) as client:
                code = fn(client, args, console())
        except (MirrorError, CommandError) as exc:
            error(exc)
            code = 1
        except KeyboardInterrupt:
            code = 130
        sys.stdout.flush()
        sys.exit(code or 0)

    handler.__name__ = fn.__name__
    return handler


def console(stderr=False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output: wide enough that tables are not folded, never colours.
    width = None if stream.isatty() or "COLUMNS" in os.environ else 200
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def error(message):
    text = " ".join(str(message).split("\n"))
    print(f"mirror: {text}", file=sys.stderr, flush=True)


# -- formatting ---------------------------------------------------------------------------
def text(value):
    """A table cell: the value as plain text (never read as rich markup)."""
    from rich.text import Text

    if value is None or value == "" or value == []:
        return Text("-")
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return Text(str(value))


def state_text(state):
    from rich.text import Text

    return Text(str(state), style=STATE_STYLES.get(state, ""))


def when(iso):
    """``2024-05-01T12:00:03.123+00:00`` -> ``2024-05-01 12:00:03``."""
    if not iso:
        return None
    return iso.replace("T", " ")[:19]


def table(*headers):
    from rich import box
    from rich.table import Table

    out = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in headers:
        out.add_column(header, overflow="fold")
    return out


# -- projects, packages, dispatch -------------------------------------------------------
def project_create(client, args, out):
    directory = Path(args.directory)
    if not directory.is_dir():
        raise CommandError(f"{directory} is not a directory")
    p_id = client.new_project(args.name, args.description)
    names = client.upload_dir(p_id, directory)
    out.print(f"project {p_id} ({args.name}): {len(names)} file(s) uploaded", markup=False)
    for name in names:
        out.print(f"  {name}", markup=False)


def project_list(client, args, out):
    rows = table("P_ID", "NAME", "FILES", "CREATED", "DESCRIPTION")
    for p in client.projects():
        rows.add_row(
            text(p["p_id"]),
            text(p["name"]),
            text(len(p.get("files") or [])),
            text(when(p.get("created"))),
            text(p.get("description")),
        )
    out.print(rows)


def package_add(client, args, out):
    path = Path(args.path)
    if not path.exists():
        raise CommandError(f"{path}: no such file or directory")
    c_id = client.add_package(path, name=args.name)
    name = args.name or (path.name[:-4] if path.name.endswith(".zip") else path.name)
    out.print(f"package {c_id} ({name}) registered", markup=False)


def package_list(client, args, out):
    rows = table("C_ID", "NAME", "ADAPTER", "VERSION", "SIZE", "CREATED")
    for c in client.packages():
        rows.add_row(
            text(c["c_id"]),
            text(c["name"]),
            text(c.get("adapter")),
            text(c.get("version")),
            text(c.get("size")),
            text(when(c.get("created"))),
        )
    out.print(rows)


def split_tags(value):
    return [t for t in (value or "").split(",") if t] or None


def dispatch_jobs(client, args, out):
    ids = client.dispatch(args.p_id, args.c_id, args.para, rid=args.rid, tags=split_tags(args.tags))
    out.print(f"dispatched {len(ids)} job(s): {' '.join(map(str, ids))}", markup=False)


def submit_script(client, args, out):
    if args.inline is not None:
        script = args.inline
    elif args.script == "-":
        script = sys.stdin.read()
    else:
        try:
            script = Path(args.script).read_text()
        except OSError as exc:
            raise CommandError(f"cannot read {args.script}: {exc.strerror}") from None
    environment = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--env takes NAME=VALUE, got {item!r}")
        environment[name] = value
    job_id = client.submit(
        script,
        name=args.name,
        ncpus=args.ncpus,
        time_limit=args.time_limit,
        environment=environment or None,
        cwd=args.cwd,
        rid=args.rid,
        tags=split_tags(args.tags),
        preferred=args.preferred,
    )
    out.print(f"submitted job {job_id}", markup=False)


# -- jobs ---------------------------------------------------------------------------------
def list_jobs(client, args, out):
    jobs = client.jobs(state=args.state, rid=args.rid, p_id=args.project, limit=args.limit)
    rows = table(
        "ID", "PROJECT", "PACKAGE", "MACHINE", "STATE", "STEP", "NAME", "CPUS", "SUBMITTED", "ERROR"
    )
    for job in jobs:
        rows.add_row(
            text(job["job_id"]),
            text(job.get("p_id")),
            text(job.get("c_id")),
            text(job.get("rid")),
            state_text(job["state"]),
            text(job.get("step")),
            text(job.get("name") or job.get("state_name")),
            text(job.get("ncpus")),
            text(when(job.get("submit_time"))),
            text(job.get("error")),
        )
    out.print(rows)
    out.print(f"{len(jobs)} job(s)", markup=False)


def job_status(client, args, out):
    from rich.table import Table

    job = client.query(args.job_id)
    data = client.getdata(args.job_id)
    head = state_text(job["state"])
    head = text(f"job {job['job_id']} ").append_text(head)
    out.print(head)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    process = data.get("process") or {}
    rows = [
        ("name", job.get("name")),
        ("project", job.get("p_id")),
        ("package", job.get("c_id")),
        ("machine", job.get("rid")),
        ("states", job.get("state_name")),
        ("step", job.get("step")),
        ("progress", f"{process.get('currentstep', '?')}/{process.get('allstep', '?')}"),
        ("cpus", job.get("ncpus")),
        ("time limit", job.get("time_limit")),
        ("tags", job.get("tags")),
        ("submitted", when(job.get("submit_time"))),
        ("started", when(job.get("start_time"))),
        ("ended", when(job.get("end_time"))),
        ("directory", job.get("path")),
        ("error", job.get("error")),
    ]
    for key, value in rows:
        if value not in (None, "", []) or key in ("machine", "step"):
            facts.add_row(key, text(value))
    params = job.get("params") or {}
    if params:
        facts.add_row("params", text(", ".join(f"{k}={v}" for k, v in params.items())))
    out.print(facts)
    steps = table("STEP", "STATE", "STARTED", "ENDED", "EXIT")
    for step in job.get("steps") or []:
        steps.add_row(
            text(step["id"]),
            state_text(step["state"]),
            text(when(step.get("start_time"))),
            text(when(step.get("end_time"))),
            text(step.get("exit_code")),
        )
    out.print(steps)
    urls = [(f"process {k}", v) for k, v in process.items() if k not in ("currentstep", "allstep")]
    urls += [(f"result {k}", v) for k, v in (data.get("result") or {}).items()]
    if urls:
        files = Table.grid(padding=(0, 2))
        files.add_column(style="bold")
        files.add_column(overflow="fold")
        for key, url in urls:
            files.add_row(key, text(url))
        out.print(files)


def watch_jobs(client, args, out):
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    ids = list(dict.fromkeys(args.job_ids))
    for job_id in ids:
        client.query(job_id)  # an unknown job is refused before any bar is drawn
    ended = {}
    progress = Progress(
        TextColumn("job {task.fields[job]:>5}"),
        TextColumn("{task.fields[step]:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[state]}"),
        console=out,
    )
    with progress:
        tasks = {
            job_id: progress.add_task("", total=None, job=job_id, step="-", state="")
            for job_id in ids
        }
        while True:
            for job_id in ids:
                if job_id in ended:
                    continue
                job = client.query(job_id)
                data = client.getdata(job_id)["process"]
                total = max(int(data["allstep"]), 1)
                style = STATE_STYLES.get(job["state"], "none")
                progress.update(
                    tasks[job_id],
                    total=total,
                    completed=min(int(data["currentstep"]), total),
                    step=escape(job.get("step") or "-"),
                    state=f"[{style}]{job['state']}[/]",
                )
                if job["state"] in FINAL:
                    ended[job_id] = job
            if len(ended) == len(ids):
                break
            time.sleep(args.interval)
    for job_id in ids:
        job = ended[job_id]
        line = text(f"job {job_id} ").append_text(state_text(job["state"]))
        if job.get("error"):
            line.append(f": {job['error']}")
        out.print(line)
    return 0 if all(job["state"] == "COMPLETED" for job in ended.values()) else 1


def job_logs(client, args, out):
    def emit(chunk):
        if chunk["stdout"]:
            sys.stdout.write(chunk["stdout"])
            sys.stdout.flush()
        if chunk["stderr"]:
            sys.stderr.write(chunk["stderr"])
            sys.stderr.flush()

    if args.follow:
        shown = None
        for chunk in client.follow_logs(args.job_id, step=args.step):
            if shown is not None and chunk["step"] != shown:
                print(f"==> step {chunk['step']} <==", file=sys.stderr, flush=True)
            shown = chunk["step"]
            emit(chunk)
        return 0
    out_offset = err_offset = 0
    step = args.step
    while True:
        chunk = client.logs(args.job_id, step=step, offset_out=out_offset, offset_err=err_offset)
        emit(chunk)
        step = chunk["step"]
        if (chunk["offset_out"], chunk["offset_err"]) == (out_offset, err_offset):
            return 0
        out_offset, err_offset = chunk["offset_out"], chunk["offset_err"]


def each_job(ids, action, done, out):
    """Run ``action(id)`` for every id; one line each; 1 if any failed."""
    from services.client import MirrorError

    failed = 0
    for job_id in dict.fromkeys(ids):
        try:
            action(job_id)
        except MirrorError as exc:
            error(exc)
            failed += 1
        else:
            out.print(f"job {job_id} {done}", markup=False)
    return 1 if failed else 0


def kill_jobs(client, args, out):
    return each_job(args.job_ids, client.kill, "killed", out)


def remove_jobs(client, args, out):
    return each_job(args.job_ids, lambda j: client.delete(j, force=args.force), "deleted", out)


def list_machines(client, args, out):
    rows = table(
        "RID",
        "NAME",
        "ONLINE",
        "AUTORUN",
        "SLOTS",
        "USED",
        "RUNNING",
        "QUEUED",
        "TAGS",
        "HEARTBEAT",
    )
    for m in client.machines():
        rows.add_row(
            text(m["rid"]),
            text(m.get("name")),
            text("yes" if m.get("online") else "no"),
            text("yes" if m.get("autorun") else "no"),
            text(m.get("slots")),
            text(m.get("used_cores")),
            text(m.get("running")),
            text(m.get("queued")),
            text(m.get("tags")),
            text(when(m.get("last_heartbeat"))),
        )
    out.print(rows)


# -- results over FTP ---------------------------------------------------------------------
def get_results(client, args, out):
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    job = client.query(args.job_id)
    results = client.getdata(args.job_id).get("result") or {}
    if not results:
        raise CommandError(f"job {args.job_id} has no results (it is {job['state']})")
    dest = Path(args.dest)
    plan = []
    for key, url in sorted(results.items()):
        with FtpSource(url) as source:
            plan += [(url, remote, dest / key / rel, size) for remote, rel, size in source.files()]
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=out,
        auto_refresh=out.is_terminal,
    )
    total = 0
    with progress:
        for url, remote, local, size in plan:
            task = progress.add_task(str(local.relative_to(dest)), total=size)
            with FtpSource(url) as source:
                count = source.download(remote, local, lambda n, t=task: progress.advance(t, n))
            progress.update(task, total=count, completed=count)
            total += count
    out.print(f"job {args.job_id}: {len(plan)} file(s), {total} bytes in {dest}", markup=False)


class FtpSource:
    """One ``ftp://user:password@host:port/path`` URL: a file, or a directory to walk."""

    def __init__(self, url):
        parts = urlsplit(url)
        if parts.scheme != "ftp":
            raise CommandError(f"not an ftp:// URL: {url}")
        self.url = url
        self.path = unquote(parts.path) or "/"
        try:
            self.ftp = ftplib.FTP()
            self.ftp.connect(parts.hostname, parts.port or 21, timeout=30)
            self.ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
            self.ftp.voidcmd("TYPE I")
        except (OSError, ftplib.Error) as exc:
            raise CommandError(f"cannot download {self.safe_url()}: {exc}") from None

    def safe_url(self):
        parts = urlsplit(self.url)
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return f"ftp://{host}{parts.path}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.ftp.quit()
        except (OSError, ftplib.Error):
            self.ftp.close()

    def is_dir(self, path):
        try:
            self.ftp.cwd(path)
        except ftplib.error_perm:
            return False
        return True

    def files(self):
        """``(remote path, local relative path, size or None)`` of every file of the URL."""
        try:
            if not self.is_dir(self.path):
                return [(self.path, Path(posixpath.basename(self.path)), self.size(self.path))]
            top = posixpath.basename(self.path.rstrip("/")) or "result"
            return list(self.walk(self.path, Path(top)))
        except (OSError, ftplib.Error) as exc:
            raise CommandError(f"cannot list {self.safe_url()}: {exc}") from None

    def walk(self, remote, local):
        for name, facts in sorted(self.ftp.mlsd(remote, facts=["type", "size"])):
            if name in (".", "..") or "/" in name or facts.get("type") in ("cdir", "pdir"):
                continue
            child = posixpath.join(remote, name)
            if facts.get("type") == "dir":
                yield from self.walk(child, local / name)
            elif facts.get("type") == "file":
                size = facts.get("size")
                yield child, local / name, int(size) if size is not None else None

    def size(self, path):
        try:
            return self.ftp.size(path)
        except ftplib.error_perm:
            return None

    def download(self, remote, local, advance):
        """Fetch ``remote`` into ``local`` (atomically); return the byte count."""
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".part")
        count = 0

        def write(block):
            nonlocal count
            fh.write(block)
            count += len(block)
            advance(len(block))

        try:
            with open(partial, "wb") as fh:
                self.ftp.retrbinary(f"RETR {remote}", write)
        except (OSError, ftplib.Error) as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"cannot download {self.safe_url()}: {exc}") from None
        partial.replace(local)
        return count
