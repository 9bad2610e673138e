"""The Slurm executor: each step runs as one Slurm batch job submitted from this login node.

It stands beside `services.agent.processes` behind the same few verbs the
step stages use: start a step, wait for its end, stop it, find it again after
an agent restart, and list the strays of jobs no longer the machine's. The
step's exit code comes, as for a local step, from the wrapper's line in the
job's ledger; the ledger also records the Slurm job id of each run, so an
agent started again finds its batch jobs. See docs/slurm.md.
"""

import logging
import os
import shlex
import time
from pathlib import Path

import eventlet

from services.agent import ledger, slurm
from services.agent.processes import WRAPPER
from services.agent.reporting import attempt_of
from services.agent.steps import Running, utcnow
from services.common.errors import MirrorError

log = logging.getLogger(__name__)

#: Slurm variables the step sees besides its allowed environment.
SLURM_VARS = (
    "SLURM_JOB_ID",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_PARTITION",
    "SLURM_CPUS_PER_TASK",
    "SLURM_SUBMIT_DIR",
)
# Batch scripts live beside the ledger, one per run.
SCRIPTS = Path(".mirror") / "slurm"
# A look at the ledger costs a file read; a look at Slurm a round trip to slurmctld.
LEDGER_TICK = 0.2


def batch_script(argv, env, job_id, step, token):
    """The text of a step's batch script: the allowed environment only, then the exit-code wrapper.

    ``env -i`` drops whatever the node's login environment adds: the step sees
    what a local step sees, plus Slurm's own job variables.
    """
    assigns = [shlex.quote(f"{k}={v}") for k, v in sorted(env.items())]
    assigns += [f'{name}="${{{name}:-}}"' for name in SLURM_VARS]
    command = ["/bin/sh", "-c", WRAPPER, "mirror-step", *argv]
    return (
        "#!/bin/sh\n"
        f"# Mirror job {job_id}, step {step}, run {token}: written by the agent for sbatch.\n"
        f"exec env -i {' '.join(assigns)} {shlex.join(command)}\n"
    )


class SlurmExecutor:
    """Submits, watches and cancels the steps of one resource machine as Slurm batch jobs."""

    name = "slurm"

    def __init__(self, rid, settings):
        self.rid = rid
        self.partition = str(settings.get("partition") or "")
        self.account = str(settings.get("account") or "")
        self.options = list(settings.get("sbatch_options") or [])
        self.poll = float(settings.get("poll_interval", 1.0))

    # -- start ---------------------------------------------------------------
    def start(self, job, launch, env, token, ledger_file, time_minutes=None):
        """Submit the step's batch job; its ``slurm`` record (id, partition, node list, state)."""
        root = launch.root
        scripts = root / SCRIPTS
        scripts.mkdir(parents=True, exist_ok=True)
        script = scripts / f"{token}.sh"
        script.write_text(batch_script(launch.argv, env, job["job_id"], launch.step_id, token))
        os.chmod(script, 0o755)
        argv = slurm.sbatch_argv(
            script,
            name=slurm.step_name(self.rid, job["job_id"], launch.step_id),
            workdir=launch.workdir,
            stdout=launch.stdout,
            stderr=launch.stderr,
            cpus=job.get("ncpus") or 1,
            time_minutes=time_minutes,
            partition=self.partition,
            account=self.account,
            comment=token,
            options=self.options,
        )
        slurm_id = slurm.parse_sbatch(slurm.run(argv))
        # In the ledger at once: an agent started again finds the batch job by it.
        ledger.record_slurm(ledger_file, token, slurm_id)
        log.info(
            "Job<%s> step %s submitted as Slurm job %s", job["job_id"], launch.step_id, slurm_id
        )
        return {
            "job_id": slurm_id,
            "partition": self.partition,
            "nodelist": "",
            "state": "PENDING",
            "step": launch.step_id,
        }

    # -- state -----------------------------------------------------------------
    def show(self, slurm_id):
        """The parsed ``scontrol show job`` of ``slurm_id``, or None once Slurm forgot it."""
        try:
            fields = slurm.parse_scontrol(
                slurm.run(["scontrol", "show", "job", "-o", str(slurm_id)])
            )
        except MirrorError as exc:
            # Only Slurm saying it knows no such job means it ended: an outage is no end.
            if slurm.unknown_job(str(exc)):
                return None
            raise
        if not fields.get("JobId"):
            raise slurm.SlurmError(f"scontrol show job {slurm_id} gave no JobId")
        return fields

    def look(self, running):
        """Refresh ``running.slurm`` from Slurm; True if the batch job is over (or forgotten)."""
        record = running.slurm
        try:
            fields = self.show(record["job_id"])
        except MirrorError as exc:
            log.warning("Job<%s> Slurm job %s not seen: %s", running.job_id, record["job_id"], exc)
            return False
        if fields is None:
            record["state"] = record.get("state") if record.get("final") else "GONE"
            return True
        state = slurm.job_state(fields) or record.get("state")
        nodes = slurm.node_list(fields)
        if nodes and nodes != record.get("nodelist"):
            record["nodelist"] = nodes
            running.slurm_changed = True
        if fields.get("Partition") and fields["Partition"] != record.get("partition"):
            record["partition"] = fields["Partition"]
            running.slurm_changed = True
        record["state"] = state
        if state in slurm.FINAL_STATES:
            record["final"] = True
            code = slurm.exit_code(fields)
            record["exit"] = None if code is None else code[0]
            return True
        return False

    def wait(self, running, timeout):
        """``(True, exit code)`` once the step's batch job ended, ``(False, None)`` after ``timeout``.

        The code is the wrapper's, from the ledger; for a batch job that
        ended by itself (COMPLETED, FAILED) with no ledger line seen, Slurm's.
        None for a job cancelled or timed out (``running.slurm["state"]`` says
        which).
        """
        if running.slurm is None:
            # Never reached Slurm (the agent died before sbatch answered): nothing runs.
            return True, ledger.exit_code(running.ledger_file, running.token)
        end = time.monotonic() + max(0.0, timeout or 0.0)
        while True:
            code = ledger.exit_code(running.ledger_file, running.token)
            if code is not None:
                if not running.slurm.get("nodelist"):
                    # A step over before Slurm was asked where it ran: asked once now.
                    self.look(running)
                return True, code
            now = time.monotonic()
            if now >= getattr(running, "slurm_next", 0.0):
                running.slurm_next = now + self.poll
                if self.look(running):
                    code = ledger.exit_code(running.ledger_file, running.token)
                    if code is None and running.slurm.get("state") in ("COMPLETED", "FAILED"):
                        code = running.slurm.get("exit")
                    return True, code
            if now >= end:
                return False, None
            eventlet.sleep(max(0.0, min(LEDGER_TICK, end - now)))

    # -- stop --------------------------------------------------------------------
    def cancel(self, slurm_id, job_id=None):
        """``scancel`` a batch job (one already over is left as it is)."""
        if not slurm_id:
            return
        try:
            slurm.run(["scancel", str(slurm_id)])
        except MirrorError as exc:
            if not slurm.unknown_job(str(exc)):
                log.warning("Job<%s> Slurm job %s not cancelled: %s", job_id, slurm_id, exc)
                return
        log.info("Job<%s> Slurm job %s cancelled", job_id, slurm_id)

    def stop(self, running):
        self.cancel((running.slurm or {}).get("job_id"), running.job_id)

    # -- finding again -------------------------------------------------------------
    def find(self, job_id, step, run):
        """The ``slurm`` record of a step's latest run, or None if it never reached Slurm.

        The ledger names the batch job; were the agent killed between sbatch
        and the ledger line, squeue finds it by its name and run token.
        """
        slurm_id = run.slurm if run is not None else None
        if slurm_id is None and run is not None:
            name = slurm.step_name(self.rid, job_id, step)
            try:
                found = slurm.parse_squeue(
                    slurm.run(["squeue", "-h", f"--name={name}", "-o", slurm.SQUEUE_FORMAT])
                )
            except MirrorError as exc:
                log.warning("Job<%s> squeue failed: %s", job_id, exc)
                found = []
            ids = [j["id"] for j in found if j["comment"] == run.token]
            slurm_id = ids[0] if ids else None
        if slurm_id is None:
            return None
        return {"job_id": slurm_id, "partition": self.partition, "nodelist": "", "step": step}

    def strays(self, work_root):
        """``{job id: [Slurm ids]}`` of this machine's batch jobs still queued or running.

        Only the agent user's jobs named for this machine whose batch script
        lies under ``work_root``: another mesh's machine of the same rid on
        the same cluster keeps its own.
        """
        out = slurm.run(["squeue", "--me", "-h", "-o", slurm.SQUEUE_FORMAT])
        prefix = os.path.join(str(work_root), "")
        found = {}
        for entry in slurm.parse_squeue(out):
            named = slurm.parse_step_name(entry["name"], self.rid)
            if named is not None and entry["command"].startswith(prefix):
                found.setdefault(named[0], []).append(entry["id"])
        return found


def record(running):
    """What central keeps of a step's Slurm job (``job.query``'s ``slurm``)."""
    batch = running.slurm
    return {
        "job_id": batch["job_id"],
        "nodelist": batch.get("nodelist", ""),
        "partition": batch.get("partition", ""),
        "step": running.step,
    }


def reattach(rt, job, step, root, ledger_file):
    """`steprun.reattach` on a Slurm machine: the latest run's batch job, named in the ledger.

    A run that never reached Slurm has no batch job: its Running has no
    ``slurm`` and is judged by the ledger alone (no exit code: vanished).
    """
    run = ledger.last_run(ledger_file, step)
    batch = rt.slurm.find(job["job_id"], step, run)
    running = Running(
        job_id=job["job_id"],
        step=step,
        pid=None,
        started=None,
        token=run.token if run is not None else None,
        start_time=utcnow(),
        job_dir=str(root),
        ledger_file=ledger_file,
        err_offset=run.err if run is not None else 0,
        publish=rt.published.setdefault(job["job_id"], {}),
        attempt=attempt_of(job),
        slurm=batch,
    )
    rt.running[job["job_id"]] = running
    log.info("Job<%s> step %s found again (Slurm job %s)", job["job_id"], step, batch)
    return running


def executor_of(agent):
    """The SlurmExecutor of an ``AGENT`` section with ``executor: slurm``, else None (local)."""
    if agent.get("executor", "local") != "slurm":
        return None
    return SlurmExecutor(int(agent["rid"]), agent.get("slurm") or {})
