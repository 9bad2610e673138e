"""The user commands on jobs and machines: ``jobs``, ``status``, ``watch``, ``logs``, ``kill``, ``rm``, ``machines``."""

import sys
import time
from contextlib import nullcontext

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from services.cli.errors import error
from services.cli.rendering import STATE_STYLES, state_text, table, text, when
from services.common.jobstates import COMPLETED, FINAL, PENDING


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
    # The jobs' events wake the loop; without a stream it polls every interval.
    stream = client.job_stream(ids)
    with progress, closing(stream):
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
            if stream is None:
                time.sleep(args.interval)
            else:
                stream.settle(client.stream_quiet)
    for job_id in ids:
        job = ended[job_id]
        line = text(f"job {job_id} ").append_text(state_text(job["state"]))
        if job.get("error"):
            line.append(f": {job['error']}")
        out.print(line)
    return 0 if all(job["state"] == COMPLETED for job in ended.values()) else 1


def closing(stream):
    """A context that closes ``stream`` (None: nothing to close)."""
    return stream if stream is not None else nullcontext()


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
        job = client.query(args.job_id)
        return no_step_ran(job, args.step) if not started_steps(job, args.step) else 0
    job = client.query(args.job_id)
    # An unknown step is left to the agent, whose answer lists the steps.
    known = args.step is None or any(s["id"] == args.step for s in job.get("steps") or [])
    if known and not started_steps(job, args.step):
        return no_step_ran(job, args.step)
    out_offset = err_offset = 0
    step = args.step
    while True:
        chunk = client.logs(args.job_id, step=step, offset_out=out_offset, offset_err=err_offset)
        emit(chunk)
        step = chunk["step"]
        if (chunk["offset_out"], chunk["offset_err"]) == (out_offset, err_offset):
            return 0
        out_offset, err_offset = chunk["offset_out"], chunk["offset_err"]


def started_steps(job, step=None):
    """Ids of the job's steps that have started a run (only ``step`` when given)."""
    return [
        s["id"]
        for s in job.get("steps") or []
        if (s.get("start_time") or s["state"] != PENDING) and step in (None, s["id"])
    ]


def no_step_ran(job, step=None):
    """Say that the job has no output because no step (or not ``step``) ran; 1 if it ended so."""
    what = f"step {step}" if step else "any step"
    if job["state"] in FINAL:
        line = f"job {job['job_id']} {job['state']} before {what} ran"
        if job.get("error"):
            line += f": {job['error']}"
        error(line)
        return 1
    started = f"step {step} has not started" if step else "no step has started"
    error(f"job {job['job_id']} is {job['state']}: no output yet, {started}")
    return 0


def each_job(ids, action, done, out, wording=None):
    """Run ``action(id)`` for every id; one line each; 1 if any failed.

    ``wording`` rewrites parts of an error message in the command line's terms.
    """
    # The client loads nameko, eventlet and kombu: only once a user command runs
    # (the daemon commands monkey-patch before those load).
    from services.client import MirrorError

    failed = 0
    for job_id in dict.fromkeys(ids):
        try:
            action(job_id)
        except MirrorError as exc:
            message = str(exc)
            for said, meant in (wording or {}).items():
                message = message.replace(said, meant)
            error(message)
            failed += 1
        else:
            out.print(f"job {job_id} {done}", markup=False)
    return 1 if failed else 0


def kill_jobs(client, args, out):
    return each_job(args.job_ids, client.kill, "killed", out)


def remove_jobs(client, args, out):
    # The service's message names its RPC argument; on the command line it is a flag.
    return each_job(
        args.job_ids,
        lambda j: client.delete(j, force=args.force),
        "deleted",
        out,
        wording={"with force=1": "with --force"},
    )


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
