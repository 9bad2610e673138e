"""Slurm's commands as the agent uses them: sbatch arguments, and parsers of their answers.

The parsers are pure functions of the commands' text, tested on small
fixtures (tests/unit/test_slurm_parse.py); `run` is the one place a Slurm
command is started.
"""

import math
import shlex
import subprocess

from services.common.errors import MirrorError

#: Slurm job states after which the batch job does nothing more.
FINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "TIMEOUT",
    }
)
#: States of a batch job that has not started yet, or waits on hold.
WAITING_STATES = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "RESV_DEL_HOLD", "SUSPENDED"})

# squeue's columns for one job: id, state, node list, partition, name, comment, command.
SQUEUE_FORMAT = "%i|%T|%N|%P|%j|%k|%o"


class SlurmError(MirrorError):
    """A Slurm command failed; the message quotes the command and what it said."""


def run(argv, *, timeout=30.0, check=True):
    """Run a Slurm command; its stdout (``check``: SlurmError on a non-zero exit)."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError as exc:
        raise SlurmError(f"{argv[0]} not found: is Slurm installed on this login node?") from exc
    except subprocess.TimeoutExpired as exc:
        raise SlurmError(f"{argv[0]} gave no answer within {timeout:g}s") from exc
    if check and done.returncode != 0:
        said = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
        raise SlurmError(f"{shlex.join(argv[:2])} failed: {said}")
    return done.stdout


def time_arg(minutes):
    """sbatch's ``--time`` for a limit of ``minutes`` (whole minutes, at least 1)."""
    return str(max(1, math.ceil(float(minutes))))


def sbatch_argv(
    script,
    *,
    name,
    workdir,
    stdout,
    stderr,
    cpus,
    time_minutes=None,
    partition="",
    account="",
    comment="",
    options=(),
):
    """The sbatch command line of one step's batch script.

    ``--export=NONE``: nothing of the agent's environment reaches the job;
    the script sets the step's allowed environment itself. Output is
    appended, as the local executor's is: the ledger's offsets count on it.
    """
    argv = [
        "sbatch",
        "--parsable",
        f"--job-name={name}",
        f"--chdir={workdir}",
        f"--output={stdout}",
        f"--error={stderr}",
        "--open-mode=append",
        f"--cpus-per-task={int(cpus)}",
        "--ntasks=1",
        "--nodes=1",
        "--export=NONE",
    ]
    if time_minutes is not None:
        argv.append(f"--time={time_arg(time_minutes)}")
    if partition:
        argv.append(f"--partition={partition}")
    if account:
        argv.append(f"--account={account}")
    if comment:
        argv.append(f"--comment={comment}")
    argv.extend(options)
    argv.append(str(script))
    return argv


def parse_sbatch(text):
    """The job id of ``sbatch --parsable``'s answer (``"123"`` or ``"123;cluster"``)."""
    line = text.strip().splitlines()[-1] if text.strip() else ""
    head = line.split(";", 1)[0].strip()
    if not head.isdigit():
        raise SlurmError(f"sbatch gave no job id: {text.strip()!r}")
    return int(head)


def parse_scontrol(text):
    """``{key: value}`` of one job in ``scontrol show job -o`` (one line of key=value pairs).

    A value may hold spaces (``Reason=...`` rarely does, ``Command=`` paths
    may): a word without ``=`` belongs to the value before it.
    """
    fields, key = {}, None
    for word in text.strip().split():
        name, sep, value = word.partition("=")
        if sep and name and (name[0].isupper() or name[0].isdigit()):
            key = name
            fields[key] = value
        elif key is not None:
            fields[key] += " " + word
    return fields


def job_state(fields):
    """The bare state of a parsed job (``CANCELLED by 0`` -> ``CANCELLED``), or None."""
    state = fields.get("JobState") or fields.get("state")
    return state.split()[0].rstrip("+") if state else None


def exit_code(fields):
    """``(code, signal)`` of ``ExitCode=2:0``, or None."""
    raw = fields.get("ExitCode", "")
    code, _, sig = raw.partition(":")
    if not code.isdigit():
        return None
    return int(code), int(sig) if sig.isdigit() else 0


def node_list(fields):
    """The node list of a parsed job, empty while it has none (``(null)``, ``None assigned``)."""
    nodes = fields.get("NodeList", "")
    return "" if nodes in ("", "(null)", "None assigned") else nodes


def parse_squeue(text):
    """Jobs of ``squeue -h -o SQUEUE_FORMAT``: ``[{id, state, nodelist, partition, name, ...}]``.

    Each also has its ``comment`` and ``command`` (the batch script's path).
    """
    jobs = []
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) != 7 or not parts[0].strip().isdigit():
            continue
        job_id, state, nodes, partition, name, comment, command = (p.strip() for p in parts)
        jobs.append(
            {
                "id": int(job_id),
                "state": state,
                "nodelist": "" if nodes in ("(null)", "") else nodes,
                "partition": partition,
                "name": name,
                "comment": "" if comment == "(null)" else comment,
                "command": command,
            }
        )
    return jobs


def parse_sinfo(text):
    """Cores per partition from ``sinfo -h -o %R|%C``: ``{partition: {idle, alloc, other, total}}``."""
    parts = {}
    for line in text.splitlines():
        name, sep, cores = line.strip().partition("|")
        counts = cores.split("/")
        if not sep or len(counts) != 4 or not all(c.isdigit() for c in counts):
            continue
        alloc, idle, other, total = (int(c) for c in counts)
        parts[name.rstrip("*")] = {"idle": idle, "alloc": alloc, "other": other, "total": total}
    return parts


def parse_queue_counts(text, partition=""):
    """``{"PD": n, "R": n}`` of ``squeue -h -o %t|%P`` lines (of ``partition`` if given)."""
    counts = {"PD": 0, "R": 0}
    for line in text.splitlines():
        state, sep, part = line.strip().partition("|")
        if not sep or (partition and part != partition):
            continue
        if state in counts:
            counts[state] += 1
    return counts


def unknown_job(text):
    """Whether a Slurm command's error says the job id is not (or no longer) known."""
    return "invalid job id" in text.lower()


def step_name(rid, job_id, step):
    """The Slurm job name of a Mirror step: machine, job and step, found again by it."""
    return f"mirror-{rid}-{job_id}-{step}"


def parse_step_name(name, rid):
    """``(job_id, step)`` of a name `step_name` gave for machine ``rid``, else None."""
    prefix = f"mirror-{rid}-"
    if not name.startswith(prefix):
        return None
    job_id, sep, step = name[len(prefix) :].partition("-")
    if not sep or not job_id.isdigit():
        return None
    return int(job_id), step
