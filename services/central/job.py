"""The ``job`` service: job records for users, and claims and reports for agents."""

import logging

from nameko.dependency_providers import Config
from nameko.exceptions import RpcTimeout, UnknownService

from services.central import publisher
from services.central.providers import Caller, Database, JobQueues
from services.central.stopping import stop_job
from services.common.cluster import DynamicRpc
from services.common.errors import MirrorError
from services.common.jobstates import FAILED, FINAL, PREPARING, QUEUED
from services.common.names import service_name
from services.common.rpc import mirror_rpc, page_limit, to_int

log = logging.getLogger(__name__)

# What a claim changes: QUEUED -> PREPARING on the claiming machine.
CLAIM = {"state": PREPARING, "message": "claimed"}


class JobService:
    """Job records, cancellation, and the claims and reports of agents."""

    name = "job"

    db = Database()
    queues = JobQueues()
    services = DynamicRpc()
    config = Config()
    caller = Caller()

    # -- for users: their own jobs (an admin: every job); any other is missing --
    @mirror_rpc
    def getrid(self, job_id):
        """The resource machine of a job."""
        return self.db.jobs.getrid(to_int(job_id, "job_id"), owner=self.caller.scope)

    @mirror_rpc
    def query(self, job_id):
        """The full record of a job (SPEC section 6), with ``waiting``: why a QUEUED job waits."""
        job = self.db.jobs.get(to_int(job_id, "job_id"), owner=self.caller.scope)
        job["waiting"] = self.db.machines.waiting(job["job_id"]) if job["state"] == QUEUED else None
        return job

    @mirror_rpc
    def events(self, job_id):
        """A job's events, oldest first."""
        return self.db.jobs.events(to_int(job_id, "job_id"), owner=self.caller.scope)

    @mirror_rpc
    def list(
        self,
        state=None,
        rid=None,
        p_id=None,
        limit=100,
        name=None,
        submission_id=None,
        slurm_id=None,
        after=None,
    ):
        """Job summaries, newest first, filtered by state, machine, project, name, submission.

        ``slurm_id``: the job whose latest step ran as that Slurm job. ``after`` (the
        ``job_id`` of the last summary of a page) gives the next page.
        """
        return self.db.jobs.list(
            state=state,
            rid=to_int(rid, "rid", optional=True),
            p_id=to_int(p_id, "p_id", optional=True),
            limit=page_limit(limit),
            owner=self.caller.scope,
            name=name,
            submission_id=submission_id,
            slurm_id=to_int(slurm_id, "slurm_id", optional=True),
            after=to_int(after, "after", optional=True),
        )

    @mirror_rpc
    def cancel(self, job_id, reason="cancelled by user"):
        """Stop a job in any unfinished state: queued ones here, others on their machine."""
        job = self.db.jobs.get(to_int(job_id, "job_id"), owner=self.caller.scope)
        stop_job(self.db, self.services, float(self.config["RPC"]["timeout"]), job, reason)
        return []

    @mirror_rpc
    def logs(self, job_id, step=None, offset_out=0, offset_err=0, max_bytes=65536):
        """A step's stdout and stderr from byte offsets, read on the job's machine.

        The same answer as ``jobagent_N.logs``, for the job's owner: users
        reach logs here, since agents' own services are internal to the mesh.
        """
        job_id = to_int(job_id, "job_id")
        job = self.db.jobs.get(job_id, owner=self.caller.scope)
        if job["rid"] is None:
            raise MirrorError(f"job {job_id} is waiting for a resource machine")
        kwargs = {
            "job_id": job_id,
            "step": step,
            "offset_out": to_int(offset_out, "offset_out"),
            "offset_err": to_int(offset_err, "offset_err"),
            "max_bytes": to_int(max_bytes, "max_bytes"),
        }
        agent = service_name("jobagent", job["rid"])
        try:
            code, value = self.services.call(
                agent, "logs", kwargs, float(self.config["RPC"]["timeout"])
            )
        except (UnknownService, RpcTimeout) as exc:
            raise MirrorError(
                f"resource machine {job['rid']} did not answer ({type(exc).__name__}); "
                f"the logs of job {job_id} are on it"
            ) from exc
        if code != 0:
            raise MirrorError(value)
        return value

    @mirror_rpc
    def delete(self, job_id):
        """Delete a QUEUED or finished job in central, whether or not its machine answers.

        Its directory and published files go when its machine is back (the
        ``cleanup`` list of ``machine.heartbeat``). A job under way is refused:
        its machine stops it first (``jobdelete_<rid>.do`` with ``force=1``).
        """
        job_id = to_int(job_id, "job_id")
        job = self.db.jobs.get(job_id, owner=self.caller.scope)
        if job["state"] == QUEUED:
            self.db.jobs.cancel_queued(job_id, "cancelled to be deleted")
        self.db.jobs.remove(job_id, states=FINAL, owner=self.caller.scope)
        return []

    # -- for the gateway -----------------------------------------------------
    @mirror_rpc
    def owned(self, job_id):
        """``[]`` when the caller may act on the job, else the missing job's error.

        The gateway asks before it forwards a user's per-machine call: agents
        act for whoever reaches them.
        """
        self.db.jobs.owned(to_int(job_id, "job_id"), owner=self.caller.scope)
        return []

    # -- for agents (internal to the mesh, services.common.surface) ----------
    @mirror_rpc
    def fetch(self, job_id, rid=None):
        """The job record plus where its package and project files are.

        With ``rid``, refused unless the job is placed on that machine.
        """
        job = self.db.jobs.get(to_int(job_id, "job_id"))
        rid = to_int(rid, "rid", optional=True)
        if rid is not None and job["rid"] is None:
            raise MirrorError(f"job {job['job_id']} is waiting for a resource machine, not {rid}")
        if rid is not None and job["rid"] != rid:
            raise MirrorError(
                f"job {job['job_id']} belongs to resource machine {job['rid']}, not {rid}"
            )
        return self._bundle(job)

    @mirror_rpc
    def claim(self, job_id, rid):
        """QUEUED -> PREPARING for machine ``rid``, answering the bundle (one round trip).

        The claim starts a new attempt: the bundle's ``attempt``, which every
        report of this run carries.
        """
        rid = to_int(rid, "rid")
        return self._claimed(
            self.db.jobs.report(to_int(job_id, "job_id"), rid, CLAIM, [QUEUED]), rid
        )

    def _claimed(self, job, rid):
        """The bundle of a job just claimed; one whose inputs are gone fails with the reason."""
        try:
            return self._bundle(job)
        except MirrorError as exc:
            reason = f"cannot run: {exc}"
            self.db.jobs.report(
                job["job_id"], rid, {"state": FAILED, "error": reason, "message": reason}
            )
            raise MirrorError(f"job {job['job_id']} {reason}") from exc

    def _bundle(self, job):
        """The job record with its package and project files, and the attempt it runs under."""
        job["package"], job["project_files"] = self.db.catalog.job_inputs(job["p_id"], job["c_id"])
        job["attempt"] = job["attempts"]
        return job

    @mirror_rpc
    def report(self, job_id, rid, changes, expect=None, attempt=None):
        """Apply one report of machine ``rid`` on a job placed on it; answer the job's record.

        A report of an ``attempt`` that a later claim superseded is refused.
        """
        if not isinstance(changes, dict):
            raise MirrorError("changes must be an object")
        released = []
        job = self.db.jobs.report(
            to_int(job_id, "job_id"),
            to_int(rid, "rid"),
            changes,
            expect,
            to_int(attempt, "attempt", optional=True),
            released,
        )
        self._send_released(released)
        return job

    @mirror_rpc
    def batch(self, rid, reports=(), claim=None):
        """Several reports of machine ``rid``, then a claim, in one round trip.

        ``reports`` holds ``{job_id, changes, expect, attempt}`` dicts, each
        applied on its own: one refused leaves the others standing. Answers
        ``reports`` (one ``[code, value]`` each, as ``report`` would answer),
        ``claimed`` (the bundle, or null) and ``claim_error`` (why not, or null).
        """
        rid = to_int(rid, "rid")
        outcomes, valid = [], []
        for item in reports:
            try:
                if not isinstance(item, dict) or not isinstance(item.get("changes"), dict):
                    raise MirrorError(f"malformed report {item!r}: needs job_id and changes")
                valid.append(
                    (
                        to_int(item.get("job_id"), "job_id"),
                        item["changes"],
                        item.get("expect"),
                        to_int(item.get("attempt"), "attempt", optional=True),
                    )
                )
                outcomes.append(None)
            except MirrorError as exc:
                outcomes.append([-1, str(exc)])
        if claim is not None:
            valid.append((to_int(claim, "claim"), CLAIM, [QUEUED], None))
        # One transaction for all of them.
        released = []
        done = iter(self.db.jobs.report_many(rid, valid, released))
        out = {"reports": [o if o is not None else next(done) for o in outcomes]}
        self._send_released(released)
        out["claimed"] = out["claim_error"] = None
        if claim is not None:
            code, value = next(done)
            try:
                if code != 0:
                    raise MirrorError(value)
                out["claimed"] = self._claimed(value, rid)
            except MirrorError as exc:
                out["claim_error"] = str(exc)
        return out

    def _send_released(self, entries):
        """Publish at once the jobs that ended jobs released or retries placed elsewhere.

        An ended job of a throttled sweep releases waiting ones, and a job its
        retry policy placed on another machine waits for it (outbox rows
        dated back, ``storage/policies.py``): they go out now, not at the
        reconciler's next pass, which sends them were this publish lost. A
        retry left unplaced or pinned is left to that pass: its machine may
        still hold its id, and would ignore it.
        """
        if not entries:
            return
        # The reports are recorded whatever the broker says: the outbox keeps
        # what did not go out.
        publisher.publish_placed(self.db, self.queues, entries)

    @mirror_rpc
    def remove(self, job_id, rid):
        """Delete a job placed on machine ``rid``, with its steps and events."""
        self.db.jobs.remove(to_int(job_id, "job_id"), to_int(rid, "rid"))
        return []
