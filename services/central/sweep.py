"""The ``sweep`` service: the jobs of one dispatch read and acted on together.

A user sees only their own sweeps (an admin every one); any other answers
as missing.
"""

import logging
import time

import eventlet
from nameko.dependency_providers import Config

from services.central import publisher
from services.central.providers import Caller, Database, JobQueues
from services.central.stopping import stop_jobs
from services.central.storage.sweeps import check_states
from services.common.cluster import DynamicRpc
from services.common.errors import MirrorError
from services.common.jobstates import ACTIVE, FAILED, FINAL, KILLED, QUEUED
from services.common.rpc import mirror_rpc, to_int
from services.common.where import parse

log = logging.getLogger(__name__)

MAX_PAGE = 10000


def check_where(where):
    """``where`` as text (None: every job), refused with the position of a problem."""
    if where is None or where == "":
        return None
    parse(where)
    return where


def check_limit(limit):
    limit = to_int(limit, "limit")
    if not 1 <= limit <= MAX_PAGE:
        raise MirrorError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    return limit


class SweepService:
    """Sweeps: list, query, page through jobs, kill, retry, delete, throttle."""

    name = "sweep"

    db = Database()
    queues = JobQueues()
    caller = Caller()
    config = Config()
    services = DynamicRpc()

    @mirror_rpc
    def list(self, p_id=None, limit=100):
        """The caller's sweeps, newest first, with their counts per state."""
        return self.db.sweeps.list(
            owner=self.caller.scope,
            p_id=to_int(p_id, "p_id", optional=True),
            limit=check_limit(limit),
        )

    @mirror_rpc
    def query(self, sweep_id):
        """Counts per state and step, progress, estimate, first submit, last end, failures."""
        return self.db.sweeps.query(to_int(sweep_id, "sweep_id"), owner=self.caller.scope)

    @mirror_rpc
    def jobs(self, sweep_id, state=None, where=None, limit=100, after=0):
        """Summaries with parameters of the sweep's jobs past job id ``after``, oldest first."""
        return self.db.sweeps.jobs(
            to_int(sweep_id, "sweep_id"),
            owner=self.caller.scope,
            state=state,
            where=check_where(where),
            limit=check_limit(limit),
            after=to_int(after, "after"),
        )

    @mirror_rpc
    def kill(self, sweep_id, where=None):
        """Stop the sweep's unfinished jobs (those ``where`` matches); answer their ids."""
        return self._kill(to_int(sweep_id, "sweep_id"), check_where(where))

    def _kill(self, sweep_id, where):
        targets = self.db.sweeps.targets(sweep_id, self.caller.scope, (QUEUED, *ACTIVE), where)
        timeout = float(self.config["RPC"]["timeout"])
        jobs, errors = [], []
        for job_id, _ in targets:
            try:
                jobs.append(self.db.jobs.get(job_id))
            except MirrorError as exc:
                errors.append(f"job {job_id}: {exc}")
        # One jobkill call per machine, not one per job.
        stopped, failed = stop_jobs(self.db, self.services, timeout, jobs, "killed with its sweep")
        errors += failed
        if errors:
            log.warning("Sweep<%s> kill: %s", sweep_id, "; ".join(errors))
        log.info("Sweep<%s> kill: %d job(s) stopped", sweep_id, len(stopped))
        return sorted(stopped)

    @mirror_rpc
    def retry(self, sweep_id, states=(FAILED, KILLED), where=None):
        """A new attempt of the sweep's jobs in ``states`` (matching ``where``); answer their ids."""
        sweep_id = to_int(sweep_id, "sweep_id")
        states = self._final_states(states)
        targets = self.db.sweeps.targets(sweep_id, self.caller.scope, states, check_where(where))
        if not targets:
            which = " or ".join(states)
            matching = f" matching {where!r}" if where else ""
            raise MirrorError(f"sweep {sweep_id} has no {which} job{matching} to retry")
        queued = self.db.sweeps.retry([j for j, _ in targets], states, "retried with its sweep")
        publisher.place_waiting(self.db, self.queues)
        publisher.drain(self.db, self.queues)
        log.info("Sweep<%s> retry: %d job(s) queued again", sweep_id, len(queued))
        return queued

    @staticmethod
    def _final_states(states):
        states = check_states(states)
        if not states:
            raise MirrorError("states is empty; name FAILED, KILLED or COMPLETED")
        unfinished = [s for s in states if s not in FINAL]
        if unfinished:
            raise MirrorError(
                f"cannot retry {unfinished[0]} jobs; states must be among FAILED, KILLED, COMPLETED"
            )
        return states

    @mirror_rpc
    def delete(self, sweep_id, force=0):
        """Delete the sweep and its jobs; ``force`` kills its unfinished jobs first."""
        sweep_id = to_int(sweep_id, "sweep_id")
        if to_int(force, "force") and self._kill(sweep_id, None):
            # Machines report their kills in their own time: wait a while for them.
            deadline = time.monotonic() + float(self.config["RPC"]["timeout"])
            while self.db.sweeps.running(sweep_id) and time.monotonic() < deadline:
                eventlet.sleep(0.2)
        return {"deleted": self.db.sweeps.delete(sweep_id, owner=self.caller.scope)}

    @mirror_rpc
    def throttle(self, sweep_id, max_running):
        """At most ``max_running`` of the sweep's jobs past QUEUED at once; 0 lifts the limit."""
        sweep_id = to_int(sweep_id, "sweep_id")
        max_running = to_int(max_running, "max_running")
        if max_running < 0:
            raise MirrorError(f"max_running must be 0 (no limit) or more, not {max_running}")
        self.db.sweeps.throttle(sweep_id, max_running, owner=self.caller.scope)
        publisher.drain(self.db, self.queues)
        log.info("Sweep<%s> throttled to %s running job(s)", sweep_id, max_running or "any")
        return {"sweep_id": sweep_id, "max_running": max_running}
