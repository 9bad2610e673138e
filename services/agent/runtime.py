"""The state one agent process keeps for its resource machine, shared by its services.

It holds things and calls none of the stages: the stages, the watch and
autorun read and change its public attributes.
"""

import logging
import os
import shutil
import threading
from pathlib import Path

import eventlet

from services.agent import identity, probe
from services.agent.central_client import CentralClient
from services.agent.keeperclient import KeeperClient
from services.agent.outbox import Outbox
from services.agent.packing import DIRECTORY_CAP
from services.agent.scheduler import Scheduler
from services.agent.slurmexec import executor_of
from services.agent.steps import base_env
from services.agent.workspace import Workspace, parse_size
from services.common.errors import MirrorError
from services.filestore import FileStore, FileStoreError

log = logging.getLogger(__name__)


class AgentRuntime:
    """Central client and outbox, file store, workspace, running steps, the autorun line.

    ``running`` maps a job id to the `Running` step the agent watches;
    ``published`` maps it to the values the package's hooks published.
    """

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

    def __init__(self, config, *, central=None, files=None):
        """``central`` and ``files`` replace the RPC client and the file store (tests)."""
        agent = config["AGENT"]
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
        self.hook_timeout = float(agent.get("hook_timeout", 60))
        # Checked first: an agent that cannot run steps as run_as must not start.
        self.run_as = identity.resolve(agent.get("run_as") or "")
        # What steps and hooks keep of the agent's environment, built once.
        self.base_env = base_env(os.environ, self.run_as)
        # None: steps are local processes; else a SlurmExecutor (AGENT.executor: slurm).
        self.slurm = executor_of(agent)
        # Starts and reaps local steps, outliving this process (`services.agent.keeper`).
        self.keeper = KeeperClient() if self.slurm is None else None
        # Its latest probe of the cluster (`services.agent.probe`), sent with each beat.
        self.probe = None
        self.probing = False
        self.probed_at = None
        min_free = parse_size(agent.get("min_free", 0), "AGENT.min_free")
        self.directory_cap = parse_size(
            agent.get("directory_cap", DIRECTORY_CAP), "AGENT.directory_cap"
        )
        self.autorun = bool(config["DEBUG"]["autorun_job"])
        monitor = config["MONITOR"]
        self.interval = float(monitor["interval"])
        # Running steps' Progress and Process files are stat'ed this often (seconds).
        self.poll = float(monitor.get("poll", 0.5))
        # A Progress file still missing after a step ran this long gets a warning event.
        self.progress_missing_after = float(monitor.get("progress_missing_after", 30))
        self.refs = 0
        self.central = central or CentralClient(config)
        # Reports central could not take wait on disk, under the work root.
        self.outbox = Outbox(self.central, Path(agent["work_root"]) / ".outbox", self.rid)
        # Heartbeats get a line of their own with a short timeout and no retries:
        # the next beat is the retry, and a beat stuck retrying would hold up a
        # clean shutdown.
        beat = float(agent["heartbeat"])
        self.beats = CentralClient(config, size=1, timeout=max(3 * beat, 5.0), retries=0)
        # A beat stuck on a dead broker connection must not hold back the
        # beats after the broker is back: the reconciler counts silent seconds.
        self.beat_limit = max(2 * beat, 1.0)
        self.files = files or FileStore(config["FTP"])
        self.workspace = Workspace(agent["work_root"], self.files, min_free)
        ahead = agent.get("claim_ahead")
        self.scheduler = Scheduler(self.slots, self.slots if ahead is None else int(ahead))
        # Early-started jobs waiting for their cores: job_id -> Event (`autorun.take_cores`).
        self.core_grants = {}
        self.running = {}
        self.published = {}
        # Jobs warned already that their Progress file never appeared.
        self.progress_warned = set()
        self._beat_sent = False
        # Deleted jobs whose leftovers are removed here, told to central at the next beat.
        self._cleaned = set()
        self.recovered = False
        self.recovering = False
        # Outages of central the agent has re-synced after (`Outbox.reconnected`).
        self.synced = 0
        self.syncing = False
        self._threads = set()

    def close(self):
        # Steps keep running: an agent started again finds them (SPEC section 10).
        for thread in list(self._threads):
            thread.kill()
        if self.keeper is not None:
            self.keeper.close()
        self.outbox.close()
        self.central.close()
        self.beats.close()
        self.files.close()

    def spawn(self, fn, *args):
        """Run ``fn(*args)`` in a green thread that ends with the runtime."""
        thread = eventlet.spawn(fn, *args)
        self._threads.add(thread)
        thread.link(lambda t: self._threads.discard(t))
        return thread

    def heartbeat(self):
        """Tell central this machine is alive (MirrorError if no answer within the limit)."""
        if probe.due(self):
            self.spawn(probe.refresh, self)
        extra = {"slurm": self.probe or {}} if self.slurm is not None else {}
        cleaned = sorted(self._cleaned)
        if cleaned:
            extra["cleaned"] = cleaned
        stuck = MirrorError(f"no answer within {self.beat_limit:g}s")
        with eventlet.Timeout(self.beat_limit, stuck):
            answer = self.beats.call(
                "machine",
                "heartbeat",
                rid=self.rid,
                name=self.name,
                slots=self.slots,
                tags=self.tags,
                autorun=self.autorun,
                started=not self._beat_sent,
                roots=self.roots,
                **extra,
            )
        self._beat_sent = True
        self._cleaned.difference_update(cleaned)
        if isinstance(answer, dict) and answer.get("cleanup"):
            self.clean(answer["cleanup"])

    def clean(self, job_ids):
        """Remove the directories and published files of jobs central deleted.

        Each job done is named to central at the next heartbeat, which then
        stops asking; one whose files could not be removed is asked for again.
        """
        for raw in job_ids:
            try:
                job_id = int(raw)
            except (TypeError, ValueError):
                log.warning("Machine<%s> cleanup of %r refused: not a job id", self.rid, raw)
                continue
            if job_id in self.running or job_id in self._cleaned:
                continue
            for path in self.workspace.job_dirs(job_id):
                shutil.rmtree(path, ignore_errors=True)
            try:
                self.files.delete_tree(f"/jobs/{job_id}")
            except FileStoreError as exc:
                log.warning("Job<%s> published files not removed yet: %s", job_id, exc)
                continue
            self.published.pop(job_id, None)
            self._cleaned.add(job_id)
            log.info("Job<%s> directory and published files removed", job_id)
