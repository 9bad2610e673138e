"""Windows onto a step's output in the job's shared stdout and stderr files."""

from pathlib import Path

from adapters.errors import AdapterError
from services.agent import ledger
from services.agent.steps import LEDGER, LOGS, log_paths, step_cwd
from services.common.errors import MirrorError


def stderr_tail(running, limit=300, window=65536):
    """The last line the step wrote to stderr, to make a failure reason useful."""
    path = running.stderr or Path(running.job_dir) / LOGS / "stderr"
    # Only this run's part of the shared file, and only its end.
    begin = max(running.err_offset, ledger.size(path) - window)
    data = ledger.read_window(path, begin, None, 0, window)
    lines = [line for line in data.decode(errors="replace").splitlines() if line.strip()]
    return f": {lines[-1][-limit:]}" if lines else ""


def read_logs(rt, job, step_id=None, offset_out=0, offset_err=0, max_bytes=65536):
    """A step's stdout and stderr from the given byte offsets (for live logs).

    The offsets count from the start of the step's latest run.
    """
    steps = [s["id"] for s in job["steps"]]
    step_id = step_id or job.get("step") or (steps[0] if steps else None)
    if step_id not in steps:
        raise MirrorError(f"job {job['job_id']} has no step {step_id!r}; steps: {', '.join(steps)}")
    out = {
        "step": step_id,
        "stdout": "",
        "stderr": "",
        "offset_out": offset_out,
        "offset_err": offset_err,
    }
    if not job.get("path") or not Path(job["path"]).is_dir():
        return out
    root = Path(job["path"])
    run = ledger.last_run(root / LEDGER, step_id)
    if run is None:
        return out
    step = rt.workspace.adapter(job["package"]).step(step_id)
    try:
        workdir = step_cwd(rt.roots, rt.rid, job, step, root)
        paths = log_paths(rt.roots, rt.rid, job, root, workdir)
    except (MirrorError, AdapterError):
        return out
    windows = (
        ("stdout", paths[0], "offset_out", run.out, run.out_end),
        ("stderr", paths[1], "offset_err", run.err, run.err_end),
    )
    for name, path, key, begin, end in windows:
        data = ledger.read_window(path, begin, end, out[key], max_bytes)
        out[name] = data.decode("utf-8", errors="replace")
        out[key] += len(data)
    return out
