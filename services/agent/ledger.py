"""The step ledger of a job directory: where each run of a step begins in the logs, how it ended.

All steps of a job write to one stdout and one stderr file, each run
appending. Before a step starts the agent appends a ``start`` record with
the two files' sizes; the step's wrapper appends ``exit <token> <code>`` when
it ends. A run's output is what lies between its start record's offsets and
the next run's. Three files per job rather than three per step keep file
creations down (see tests/bench/README.md).
"""

import json
import os
from dataclasses import dataclass


@dataclass
class Run:
    """One run of a step, as the ledger records it."""

    step: str
    token: str
    out: int
    err: int
    # Where the next run's output begins (None: the end of the files).
    out_end: int | None = None
    err_end: int | None = None
    code: int | None = None
    # The Slurm job id of the run (Slurm executor only).
    slurm: int | None = None


def record_start(path, step, token, out, err):
    """Append the start record of a run whose output begins at offsets ``out`` and ``err``."""
    line = json.dumps({"step": step, "token": token, "out": out, "err": err})
    with open(path, "a", encoding="utf-8") as ledger:
        ledger.write(line + "\n")


def record_slurm(path, token, slurm_id):
    """Append that run ``token`` is Slurm job ``slurm_id`` (the Slurm executor)."""
    with open(path, "a", encoding="utf-8") as ledger:
        ledger.write(f"slurm {token} {int(slurm_id)}\n")


def parse(text):
    """The runs a ledger's text records, in order; lines cut short by a crash are skipped."""
    runs, by_token = [], {}
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                fields = json.loads(line)
                run = Run(fields["step"], fields["token"], int(fields["out"]), int(fields["err"]))
            except (ValueError, KeyError, TypeError):
                continue
            if runs:
                runs[-1].out_end, runs[-1].err_end = run.out, run.err
            runs.append(run)
            by_token[run.token] = run
        elif line.startswith("exit "):
            parts = line.split()
            if len(parts) == 3 and parts[1] in by_token and parts[2].lstrip("-").isdigit():
                by_token[parts[1]].code = int(parts[2])
        elif line.startswith("slurm "):
            parts = line.split()
            if len(parts) == 3 and parts[1] in by_token and parts[2].isdigit():
                by_token[parts[1]].slurm = int(parts[2])
    return runs


def read(path):
    """The runs of the ledger at ``path`` (none if it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as ledger:
            return parse(ledger.read())
    except FileNotFoundError:
        return []


def last_run(path, step):
    """The latest run of ``step``, or None."""
    for run in reversed(read(path)):
        if run.step == step:
            return run
    return None


def exit_code(path, token):
    """The exit code the run ``token`` left, or None (still running, or killed)."""
    for run in read(path):
        if run.token == token:
            return run.code
    return None


def size(path):
    """The size of a log file, 0 if it does not exist yet."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def read_window(path, start, end, offset, max_bytes):
    """Up to ``max_bytes`` of ``path`` from ``start + offset``, not past ``end`` (None: no limit)."""
    begin = start + offset
    limit = max_bytes if end is None else max(0, min(max_bytes, end - begin))
    if limit == 0:
        return b""
    try:
        with open(path, "rb") as fh:
            fh.seek(begin)
            return fh.read(limit)
    except OSError:
        return b""
