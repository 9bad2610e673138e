"""The state one agent process keeps for its resource machine, shared by its services."""

import logging
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path

import eventlet

from services.agent import processes, stages
from services.agent.central import CentralClient
from services.agent.workspace import Workspace
from services.common.errors import MirrorError
from services.filestore import FileStore

log = logging.getLogger(__name__)


class AgentRuntime:
    """Central client, file store, workspace, running steps and the autorun scheduler."""

    _instances = {}
    _guard = threading.Lock()

    @classmethod
    def acquire(cls, config):
        """The runtime of ``config``'s resource machine in this process (shared, counted)."""
        rid = int(config["AGENT"]["rid"])
        with cls._guard:
            runtime = cls._instances.get(rid)
            if runtime is None:
                runtime = cls._instances[rid] = cls(config)
            runtime.refs += 1
            return runtime

    def release(self):
        with self._guard:
            self.refs -= 1
            if self.refs > 0:
                return
            self._instances.pop(self.rid, None)
        self.close()

    def __init__(self, config):
        agent = config["AGENT"]
        self.config = config
        self.rid = int(agent["rid"])
        self.name = agent["name"]
        self.slots = int(agent["slots"])
        self.tags = list(agent.get("tags") or [])
        self.roots = [
            str(Path(r).resolve())
            for r in [agent["work_root"], *(agent.get("allowed_roots") or [])]
        ]
        self.kill_grace = float(agent.get("kill_grace", 5))
        self.report_delay = float(agent.get("report_delay", 0.5))
        self.autorun = bool(config["DEBUG"]["autorun_job"])
        self.interval = float(config["MONITOR"]["interval"])
        self.refs = 0
        self.central = CentralClient(config)
        # Heartbeats get a line of their own with a short timeout and no retries:
        # the next beat is the retry, and a beat stuck retrying would hold up a
        # clean shutdown.
        beat = float(agent["heartbeat"])
        self.beats = CentralClient(config, size=1, timeout=max(3 * beat, 5.0), retries=0)
        # A beat stuck on a dead broker connection must not hold back the
        # beats after the broker is back: the reconciler counts silent seconds.
        self.beat_limit = max(2 * beat, 1.0)
        self.files = FileStore(config["FTP"])
        self.workspace = Workspace(agent["work_root"], self.files)
        self.running = {}
        self.published = {}
        self.waiting = deque()
        self.active = {}
        self.started_at = time.time()
        self._beat_sent = False
        self.recovered = False
        self.recovering = False
        self._threads = set()

    def close(self):
        # Steps keep running: an agent started again finds them (SPEC section 10).
        for thread in list(self._threads):
            thread.kill()
        self.central.close()
        self.beats.close()
        self.files.close()

    def spawn(self, fn, *args):
        thread = eventlet.spawn(fn, *args)
        self._threads.add(thread)
        thread.link(lambda t: self._threads.discard(t))
        return thread

    # -- running steps ---------------------------------------------------------
    def track(self, running):
        self.running[running.job_id] = running

    def forget(self, job_id):
        self.running.pop(job_id, None)

    def watch(self, job, running, *, autorun=False):
        """Wait for a step to end, monitoring meanwhile; then record how it ended."""
        deadline = None
        if job.get("time_limit"):
            # The job's start, or its first step's while that is not reported yet.
            starts = [s["start_time"] for s in job["steps"] if s.get("start_time")]
            started = job.get("start_time") or min(starts, default=None)
            begun = datetime.fromisoformat(started).timestamp() if started else time.time()
            deadline = begun + float(job["time_limit"]) * 60
        while True:
            wait = self.interval
            if running.report_due is not None:
                wait = min(wait, max(0.0, running.report_due - time.monotonic()))
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.time()))
            ended, code = processes.wait_exit(running.pid, timeout=wait, started=running.started)
            if ended:
                break
            if running.killed:
                return job
            if deadline is not None and time.time() >= deadline:
                return self._time_out(job, running)
            if running.report_due is not None:
                # A step outlasting AGENT.report_delay: now record it RUNNING.
                if time.monotonic() >= running.report_due and not stages.report_running(
                    self, job, running
                ):
                    return job
                continue
            try:
                stages.monitor(self, job)
            except MirrorError as exc:
                if self._taken_away(job, running):
                    return job
                log.warning("Job<%s> monitoring failed: %s", job["job_id"], exc)
        self.forget(job["job_id"])
        return stages.finish_step(self, job, running, code, autorun=autorun)

    def _taken_away(self, job, running):
        """Stop a step whose job was failed, killed or queued again without this agent."""
        try:
            current = self.central.fetch(job["job_id"])
        except MirrorError:
            return False
        if current["state"] == stages.RUNNING and current["rid"] == self.rid:
            return False
        log.warning(
            "Job<%s> is now %s on machine %s; stopping its step %s here",
            job["job_id"],
            current["state"],
            current["rid"],
            running.step,
        )
        running.killed = True
        processes.kill_tree(running.pid, running.started, running.token, self.kill_grace)
        self.forget(job["job_id"])
        return True

    def _time_out(self, job, running):
        running.killed = True
        reason = f"time limit of {job['time_limit']:g} min exceeded in step {running.step}"
        stages.fail(self, job, reason, running.step)
        processes.kill_tree(running.pid, running.started, running.token, self.kill_grace)
        self.forget(job["job_id"])
        return job

    def watch_in_background(self, job, running):
        self.spawn(self._watch_logged, job, running)

    def _watch_logged(self, job, running):
        try:
            self.watch(job, running)
        except Exception:  # noqa: BLE001 - a watcher must never die silently
            log.exception("Job<%s> watcher failed", job["job_id"])
            stages.fail(self, job, f"agent lost track of step {running.step}")

    # -- autorun -----------------------------------------------------------------
    def enqueue(self, job_id, ncpus=1):
        """Take a job id from the machine's queue; it starts when its cores are free."""
        if job_id in self.active or any(j == job_id for j, _ in self.waiting):
            return
        self.waiting.append((job_id, max(int(ncpus or 1), 1)))
        self.schedule()

    @property
    def used_cores(self):
        return sum(self.active.values())

    def schedule(self):
        """First in, first out, first fit: start every waiting job whose cores are free."""
        free = self.slots - self.used_cores
        for item in list(self.waiting):
            job_id, ncpus = item
            if ncpus > self.slots:
                self.waiting.remove(item)
                self.spawn(self._refuse, job_id, ncpus)
            elif ncpus <= free:
                self.waiting.remove(item)
                self.active[job_id] = ncpus
                free -= ncpus
                self.spawn(self._pipeline, job_id)

    def _refuse(self, job_id, ncpus):
        job = stages.claim(self, job_id)
        if job is not None:
            stages.fail(
                self,
                job,
                f"job needs {ncpus} cores; resource machine {self.rid} has {self.slots} slots",
            )

    def free_cores(self, job_id):
        """Give back a job's cores and start whatever now fits."""
        if self.active.pop(job_id, None) is not None:
            self.schedule()

    def _pipeline(self, job_id):
        try:
            job = stages.claim(self, job_id)
            if job is not None:
                self.run_pipeline(job)
        finally:
            self.free_cores(job_id)

    def run_pipeline(self, job, running=None):
        """Every stage of a claimed job, in order, with no calls from outside.

        It also resumes a job met again after a restart: built stages are
        skipped, a step still running (``running``) is watched to its end.
        """
        job_id = job["job_id"]
        try:
            if running is not None:
                self.watch(job, running, autorun=True)
                if running.killed or job["state"] != stages.READY:
                    return
            if job["state"] == stages.PREPARING:
                # Both stages' reports ride with the first step's RUNNING report.
                stages.build_directory(self, job, defer=True)
                stages.build_files(self, job, defer=True)
            while any(s["state"] != "DONE" for s in job["steps"]):
                running = stages.launch_step(self, job, defer_report=True)
                self.watch(job, running, autorun=True)
                if running.killed or job["state"] != stages.READY:
                    return
            # Publishing results takes no cores: the next job may start meanwhile.
            self.free_cores(job_id)
            # With jobs waiting, a claim follows soon: the final report rides with
            # it, one round trip for both (at most AGENT.report_delay later).
            stages.recover(self, job, linger=self.report_delay if self.waiting else 0.0)
            log.info("Job<%s> %s", job_id, job["state"])
        except MirrorError as exc:
            stages.fail(self, job, str(exc))
        except Exception as exc:  # noqa: BLE001 - the job must end, never stay RUNNING
            log.exception("Job<%s> autorun failed", job_id)
            stages.fail(self, job, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self.published.pop(job_id, None)

    def _resume(self, job, running):
        try:
            self.run_pipeline(job, running)
        finally:
            self.free_cores(job["job_id"])

    def recover_jobs(self):
        """Find this machine's unfinished jobs again after a (re)start (SPEC section 10)."""
        mine = self.central.call(
            "job", "list", state="PREPARING,READY,RUNNING", rid=self.rid, limit=100000
        )
        for summary in mine:
            job_id = summary["job_id"]
            if job_id in self.active or job_id in self.running:
                continue
            try:
                self._recover_one(stages.fetch(self, job_id))
            except MirrorError as exc:
                log.warning("Job<%s> could not be recovered: %s", job_id, exc)

    def _recover_one(self, job):
        stages.replay_journal(self, job)
        running = None
        if job["state"] == stages.RUNNING:
            running = stages.reattach(self, job)
        if self.autorun:
            self.active[job["job_id"]] = job["ncpus"]
            self.spawn(self._resume, job, running)
        elif running is not None:
            self.watch_in_background(job, running)

    def start(self):
        """Pick up where an earlier agent process of this machine left off."""
        try:
            self.recover_jobs()
            if self.autorun:
                self.catch_up()
            self.recovered = True
        except MirrorError as exc:
            # Tried again at the next heartbeat.
            log.warning("Machine<%s> start-up recovery failed: %s", self.rid, exc)
        finally:
            self.recovering = False

    def catch_up(self):
        """Enqueue the jobs already queued for this machine (messages taken before a restart)."""
        for job in reversed(
            self.central.call("job", "list", state="QUEUED", rid=self.rid, limit=10000)
        ):
            self.enqueue(job["job_id"], job.get("ncpus", 1))

    # -- heartbeat -------------------------------------------------------------------
    def heartbeat(self):
        stuck = MirrorError(f"no answer within {self.beat_limit:g}s")
        with eventlet.Timeout(self.beat_limit, stuck):
            self._beat()

    def _beat(self):
        self.beats.call(
            "machine",
            "heartbeat",
            rid=self.rid,
            name=self.name,
            slots=self.slots,
            tags=self.tags,
            autorun=self.autorun,
            started=not self._beat_sent,
            roots=self.roots,
        )
        self._beat_sent = True
