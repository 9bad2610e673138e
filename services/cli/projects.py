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
    # The parameter file is checked before anything is created: a broken one creates nothing.
    para = args.para or "para.xml"
    found = read_parameters(directory, para, explicit=args.para is not None)
    p_id = client.new_project(args.name, args.description)
    names = client.upload_dir(p_id, directory)
    out.print(f"project {p_id} ({args.name}): {len(names)} file(s) uploaded", markup=False)
    for name in names:
        out.print(f"  {name}", markup=False)
    out.print(found, markup=False)
    if args.package is not None and para in names:
        return check_with_package(client, p_id, args.package, para, out)
    return 0


def read_parameters(directory, para, explicit):
    """What the parameter file ``para`` of ``directory`` gives, as one line; refuse a bad one."""
    from adapters.errors import AdapterError
    from adapters.params import parse_params

    path = directory / para
    if not path.is_file():
        if explicit:
            raise CommandError(f"{path}: no such parameter file; no project was created")
        return f"{para}: not in {directory}; dispatch needs a parameter file (--para names it)"
    try:
        states = parse_params(path.read_bytes(), para)
    except AdapterError as exc:
        raise CommandError(f"{exc}; no project was created") from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    names = ", ".join(sorted(states[0].params)) if states else "none"
    return f"{para}: {len(states)} job(s) on dispatch; parameters: {names}"


def check_with_package(client, p_id, c_id, para, out):
    """Print what dispatching the new project with package ``c_id`` would refuse."""
    found = client.check(p_id, c_id, para)["problems"]
    if not found:
        out.print(f"package {c_id}: every placeholder names a parameter of {para}", markup=False)
        return 0
    out.print(f"package {c_id}: {len(found)} placeholder(s) name no parameter:", markup=False)
    for problem in found:
        out.print(f"  {problem}", markup=False)
    raise CommandError(
        f"dispatching project {p_id} with package {c_id} would be refused "
        f"({len(found)} problem(s) above); fix the package or {para}"
    )


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
    package = client.package(c_id)
    out.print(
        f"package {c_id} ({package['name']} version {package['version']}) registered", markup=False
    )


def package_list(client, args, out):
    rows = table("NAME", "VERSION", "C_ID", "ADAPTER", "ADAPTER VERSION", "SIZE", "CREATED")
    for c in client.packages():
        rows.add_row(
            text(c["name"]),
            text(c.get("version")),
            text(c["c_id"]),
            text(c.get("adapter")),
            text(c.get("adapter_version")),
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
