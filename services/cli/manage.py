"""The management commands: project files, deletes, forgetting machines, a project's results.

``project add|rm``, ``package rm``, ``machine forget``, ``get --project`` and ``results``.
"""

from pathlib import Path

from services.cli.download import FtpSource, download_all, get_results, plan_downloads
from services.cli.errors import CommandError
from services.cli.rendering import state_text, table, text
from services.cli.resulttable import (
    INLINE_BYTES,
    build_table,
    inline_text,
    is_url,
    to_csv,
    url_name,
)


def project_add(client, args, out):
    """Add or replace files of a project: ``mirror project add P_ID FILE...``."""
    before = next((p for p in client.projects() if p["p_id"] == args.p_id), None)
    if before is None:
        raise CommandError(f"project is not existed , project : {args.p_id}")
    names = client.upload_files(args.p_id, args.files)
    existing = set(before.get("files") or [])
    out.print(f"project {args.p_id}: {len(names)} file(s) uploaded", markup=False)
    for name in names:
        out.print(f"  {'replaced' if name in existing else 'added':8} {name}", markup=False)


def project_rm(client, args, out):
    """Delete projects: their files and finished jobs go with them."""
    for p_id in args.p_ids:
        gone = client.delete_project(p_id)
        out.print(
            f"project {p_id} deleted: {len(gone['files'])} file(s), {len(gone['jobs'])} job(s)",
            markup=False,
        )


def package_rm(client, args, out):
    """Delete packages no unfinished job uses."""
    for c_id in args.c_ids:
        gone = client.delete_package(c_id)
        out.print(
            f"package {c_id} ({gone['name']} version {gone['version']}) deleted", markup=False
        )


def machine_forget(client, args, out):
    """Remove decommissioned resource machines from the registry."""
    for rid in args.rids:
        client.forget_machine(rid)
        out.print(f"resource machine {rid} forgotten", markup=False)


def folder_names(rows):
    """``{job_id: folder}``: each job's state name made safe for a path, unique per project.

    A job without a state name gets ``job<ID>``; a name two jobs share (two
    dispatches of one project) gets ``.job<ID>`` appended.
    """
    base = {}
    for row in rows:
        name = (row.get("state_name") or "").replace("/", "_").replace("\0", "_").strip()
        if not name or name.startswith("."):
            name = f"job{row['job_id']}" if not name else "_" + name[1:]
        base[row["job_id"]] = name
    shared = {n for n in base.values() if list(base.values()).count(n) > 1}
    return {j: (f"{n}.job{j}" if n in shared else n) for j, n in base.items()}


def get(client, args, out):
    """``mirror get ID DEST`` or ``mirror get --project P_ID DEST``."""
    args.job_id, args.dest = split_get_words(args.words)
    if args.project is None and args.job_id is None:
        raise CommandError("give a job ID or --project P_ID")
    if args.project is not None and args.job_id is not None:
        raise CommandError("give a job ID or --project P_ID, not both")
    if args.project is not None and getattr(args, "all", False):
        raise CommandError("--all fetches one job's directory: give a job ID, not --project")
    if args.project is None:
        return get_results(client, args, out)
    return get_project(client, args, out)


def split_get_words(words):
    """``(job id or None, DEST)`` of ``mirror get``'s positional words."""
    if len(words) == 1:
        return None, words[0]
    if len(words) > 2:
        raise CommandError(f"mirror get takes [ID] DEST, got {len(words)} words: {' '.join(words)}")
    try:
        return int(words[0]), words[1]
    except ValueError:
        raise CommandError(f"job ID must be an integer, got {words[0]!r}") from None


def get_project(client, args, out):
    """Download the results of every job of a project into ``DEST/<state name>/<key>/``."""
    rows = client.project_results(args.project)
    if not rows:
        raise CommandError(f"project {args.project} has no jobs")
    with_results = [r for r in rows if r["result"]]
    if not with_results:
        states = ", ".join(f"{r['job_id']} {r['state']}" for r in rows)
        raise CommandError(f"project {args.project} has no results yet (jobs: {states})")
    dest = Path(args.dest)
    folders = folder_names(rows)
    plan = []
    for row in with_results:
        plan += plan_downloads(row["result"], dest / folders[row["job_id"]])
    files, total = download_all(plan, dest, out)
    for row in rows:
        if not row["result"]:
            out.print(
                f"job {row['job_id']} ({row['state_name'] or '-'}) is {row['state']}: "
                "no results, skipped",
                markup=False,
            )
    out.print(
        f"project {args.project}: {len(with_results)} job(s), {files} file(s), "
        f"{total} bytes in {dest}",
        markup=False,
    )


def resolver(urls=False, csv=False):
    """The cell text of a Process or Result value.

    An ``ftp://`` URL of a small one-line text file shows that line; any other
    URL its file name (in CSV, the URL itself); ``urls`` shows URLs unread.
    """

    def resolve(value):
        if not is_url(value):
            return "" if value is None else str(value)
        if not urls:
            with FtpSource(value) as source:
                data = source.read_small(INLINE_BYTES)
            line = inline_text(data) if data is not None else None
            if line is not None:
                return line
        return value if csv or urls else url_name(value)

    return resolve


def results(client, args, out):
    """A table of each job's parameters against its Process and Result values."""
    rows = client.project_results(args.p_id)
    headers, groups, body = build_table(rows, resolver(args.urls, args.csv))
    if args.csv:
        out.file.write(to_csv(headers, body))
        return
    styles = {"param": "cyan", "process": "magenta", "result": "green"}
    grid = table(*headers)
    for column, group in zip(grid.columns, groups, strict=True):
        column.header_style = styles.get(group, "bold")
    for line in body:
        grid.add_row(text(line[0]), state_text(line[1]), *(text(cell) for cell in line[2:]))
    out.print(grid)
    out.print(f"{len(body)} job(s) of project {args.p_id}", markup=False)
