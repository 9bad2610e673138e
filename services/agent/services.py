"""The per-machine services of one resource machine, built for its rid at start-up.

``agent_services(config)`` returns ``jobdirbuild_<rid>`` ... ``jobdelete_<rid>``
and ``jobagent_<rid>`` (heartbeat, plus the autorun consumer when it is on).
"""

import logging

from nameko.extensions import DependencyProvider
from nameko.messaging import consume
from nameko.timer import timer

from services.agent import autorun, identity, killing, packing, recovery, resync, stages
from services.agent.expiry import Deadline, drop_expired
from services.agent.logs import read_logs
from services.agent.runtime import AgentRuntime
from services.agent.steprun import launch_step
from services.agent.watch import watch_in_background
from services.common.errors import MirrorError
from services.common.names import job_queue, service_name
from services.common.rpc import mirror_rpc, to_int
from services.config import ConfigError

log = logging.getLogger(__name__)


class Runtime(DependencyProvider):
    """The process-wide runtime of this container's resource machine."""

    def setup(self):
        self.runtime = AgentRuntime.acquire(self.container.config)

    def stop(self):
        self.runtime.release()

    def kill(self):
        self.runtime.release()

    def get_dependency(self, worker_ctx):
        return self.runtime


class JobDirBuild:
    rt = Runtime()
    deadline = Deadline()

    @mirror_rpc
    def do(self, job_id, force=0):
        drop_expired(self.deadline, self.rt.rid)
        job = stages.fetch(self.rt, to_int(job_id, "job_id"))
        stages.build_directory(self.rt, job, force=bool(to_int(force, "force")))
        return []


class JobFileBuild:
    rt = Runtime()
    deadline = Deadline()

    @mirror_rpc
    def do(self, job_id):
        drop_expired(self.deadline, self.rt.rid)
        stages.build_files(self.rt, stages.fetch(self.rt, to_int(job_id, "job_id")))
        return []


class JobRun:
    rt = Runtime()
    deadline = Deadline()

    @mirror_rpc
    def do(self, job_id, step=None):
        drop_expired(self.deadline, self.rt.rid)
        if step is not None and not isinstance(step, str):
            raise MirrorError(f"step must be a step id, got {step!r}")
        job = stages.fetch(self.rt, to_int(job_id, "job_id"))
        running = launch_step(self.rt, job, step)
        # The call returns once the process has started; its end is recorded later.
        watch_in_background(self.rt, job, running)
        return []


class JobProcessMonitor:
    rt = Runtime()
    deadline = Deadline()

    @mirror_rpc
    def do(self, job_id):
        drop_expired(self.deadline, self.rt.rid)
        stages.monitor(self.rt, stages.fetch(self.rt, to_int(job_id, "job_id")))
        return []


class JobResultRecovery:
    rt = Runtime()
    deadline = Deadline()

    @mirror_rpc
    def do(self, job_id):
        drop_expired(self.deadline, self.rt.rid)
        stages.recover(self.rt, stages.fetch(self.rt, to_int(job_id, "job_id")))
        return []


class JobKill:
    rt = Runtime()
    deadline = Deadline()

    @mirror_rpc
    def do(self, job_id=None, reason=None, job_ids=None):
        """Stop the job; ``reason`` (default ``killed by user``) becomes its error.

        With ``job_ids`` instead of ``job_id``, stop all of them in this one
        call and answer ``{"stopped", "errors"}`` (`killing.kill_many`).
        """
        drop_expired(self.deadline, self.rt.rid)
        reason = str(reason) if reason else "killed by user"
        if job_ids is not None:
            if job_id is not None:
                raise MirrorError("name job_id or job_ids, not both")
            return killing.kill_many(self.rt, job_ids, reason)
        if job_id is None:
            raise MirrorError("job_id is required (or job_ids, a list of job ids)")
        stages.kill(self.rt, stages.fetch(self.rt, to_int(job_id, "job_id")), reason)
        return []


class JobDelete:
    rt = Runtime()
    deadline = Deadline()

    @mirror_rpc
    def do(self, job_id, force=0):
        drop_expired(self.deadline, self.rt.rid)
        job = stages.fetch(self.rt, to_int(job_id, "job_id"))
        stages.delete(self.rt, job, force=bool(to_int(force, "force")))
        return []


STAGE_SERVICES = {
    "jobdirbuild": JobDirBuild,
    "jobfilebuild": JobFileBuild,
    "jobrun": JobRun,
    "jobprocessmonitor": JobProcessMonitor,
    "jobresultrecovery": JobResultRecovery,
    "jobkill": JobKill,
    "jobdelete": JobDelete,
}


class JobAgent:
    """Heartbeats and, in autorun, the consumer of the machine's job queue."""

    rt = Runtime()
    deadline = Deadline()

    def beat(self):
        try:
            self.rt.heartbeat()
        except MirrorError as exc:
            log.warning("Machine<%s> heartbeat failed: %s", self.rt.rid, exc)
            return
        if not self.rt.recovered and not self.rt.recovering:
            # Registered: now find the jobs an earlier process left running.
            self.rt.recovering = True
            self.rt.spawn(recovery.start, self.rt)
        elif resync.due(self.rt):
            # Central came back after an outage: agree again on which jobs run here.
            self.rt.syncing = True
            self.rt.spawn(resync.resync, self.rt)

    def take(self, body):
        # Ack, then claim: autorun claims each job when its cores are free, so
        # this delivery is acked at once. A body holds a batch of
        # ``[job_id, ncpus]`` pairs, or a single ``job_id`` (and ``ncpus``).
        jobs = body.get("jobs") or [[body["job_id"], body.get("ncpus", 1)]]
        for job_id, ncpus in jobs:
            autorun.enqueue(self.rt, int(job_id), ncpus)

    @mirror_rpc
    def logs(self, job_id, step=None, offset_out=0, offset_err=0, max_bytes=65536):
        """A step's stdout and stderr from byte offsets, so that a follower can poll."""
        drop_expired(self.deadline, self.rt.rid)
        job = stages.fetch(self.rt, to_int(job_id, "job_id"))
        return read_logs(
            self.rt,
            job,
            step,
            to_int(offset_out, "offset_out"),
            to_int(offset_err, "offset_err"),
            min(to_int(max_bytes, "max_bytes"), 1024 * 1024),
        )

    @mirror_rpc
    def pack(self, job_id):
        """Publish the ended job's whole directory as a tar.gz: ``{"url", "bytes", "files"}``."""
        drop_expired(self.deadline, self.rt.rid)
        return packing.pack(self.rt, stages.fetch(self.rt, to_int(job_id, "job_id")))

    @mirror_rpc
    def status(self):
        drop_expired(self.deadline, self.rt.rid)
        rt = self.rt
        return {
            "rid": rt.rid,
            "autorun": rt.autorun,
            "slots": rt.slots,
            "used_cores": rt.scheduler.used_cores,
            "running": sorted(rt.running),
            "waiting": [job_id for job_id, _ in rt.scheduler.waiting],
        }


def agent_services(config):
    """Build the service classes of the resource machine in ``config["AGENT"]["rid"]``.

    An ``AGENT.run_as`` the agent cannot honour ends the command with one line.
    """
    try:
        identity.resolve(config["AGENT"].get("run_as"))
    except ConfigError as exc:
        raise SystemExit(f"mirror: {exc}") from None
    rid = int(config["AGENT"]["rid"])
    classes = [
        type(f"{base.__name__}{rid}", (base,), {"name": service_name(key, rid)})
        for key, base in STAGE_SERVICES.items()
    ]

    # Fresh functions per build: nameko marks entrypoints on the function
    # object, and two machines in one process must not share a timer or a queue.
    def beat(self):
        return JobAgent.beat(self)

    def take(self, body):
        return JobAgent.take(self, body)

    attrs = {
        "name": service_name("jobagent", rid),
        "beat": timer(interval=float(config["AGENT"]["heartbeat"]))(beat),
    }
    if config["DEBUG"]["autorun_job"]:
        attrs["take"] = consume(job_queue(rid))(take)
    classes.append(type(f"JobAgent{rid}", (JobAgent,), attrs))
    return classes
