"""The user commands on projects and packages: ``project``, ``package``, ``dispatch``, ``submit``."""

import sys
from pathlib import Path

from services.cli.errors import CommandError
from services.cli.rendering import table, text, when
from services.cli.sweeps import watch


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
    sweep_id = client.sweep_of(ids[0]) if ids else None
    out.print(
        f"dispatched {len(ids)} job(s) as sweep {sweep_id}: {' '.join(map(str, ids))}",
        markup=False,
    )
    if args.watch and sweep_id is not None:
        watch(client, sweep_id, out)


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
