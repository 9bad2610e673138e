"""The ``jobdispatch`` service: split a project's parameter file into queued jobs."""

import logging

from nameko.dependency_providers import Config
from sqlalchemy.exc import IntegrityError

from adapters.params import parse_params, resolved_bytes
from adapters.usage import known_names, problems, refusal
from services.central.checks import (
    check_against_roots,
    check_environment,
    check_minutes,
    check_path,
    check_positive_int,
    script_state,
    split_tags,
)
from services.central.providers import Caller, Database, JobQueues
from services.central.publisher import publish_placed
from services.central.requests import Requests, idempotent
from services.central.storage.policies import check_policy
from services.central.storage.sweeps import value_counts
from services.common.errors import MirrorError
from services.common.rpc import mirror_rpc, to_int
from services.config import DEFAULTS

log = logging.getLogger(__name__)


class JobDispatchService:
    """Parameter sweeps (``do``) and script submissions (``submit``) become queued jobs."""

    name = "jobdispatch"

    db = Database()
    queues = JobQueues()
    caller = Caller()
    config = Config()
    requests = Requests()

    @mirror_rpc
    @idempotent
    def do(self, p_id, c_id, para_name="para.xml", rid=None, tags=None, request_id=None):
        """One queued job per state of the project's parameter file; answer their ids.

        The caller's own project, with a package they may use; the jobs are theirs.
        A repeated ``request_id`` answers the first call's ids.
        """
        p_id, c_id = to_int(p_id, "p_id"), to_int(c_id, "c_id")
        rid = to_int(rid, "rid", optional=True)
        tags = split_tags(tags)
        catalog, caller = self.db.catalog, self.caller
        catalog.require_project(p_id, owner=caller.scope)
        # Also for an admin: the parsed adapter stays cached after a package is deleted.
        catalog.require_package(c_id, user=caller.scope)
        adapter = catalog.adapter(c_id)
        states = parse_params(
            catalog.read_project_file(p_id, para_name, owner=caller.scope), para_name
        )
        self._check_size(para_name, states)
        check_placeholders(catalog.inventory(c_id), states, para_name)
        for state in states:
            check_policy(state.params)
        placements = self._place([ncpus_of(s) for s in states], rid, tags)
        try:
            ids = self.db.jobs.create(
                p_id,
                c_id,
                para_name,
                states,
                adapter.step_ids,
                placements,
                tags,
                owner=caller.name,
                within=self.requests.record,
                pinned=rid is not None,
                sweep={
                    "kind": "dispatch",
                    "p_id": p_id,
                    "c_id": c_id,
                    "para_name": para_name,
                    "value_counts": value_counts(states),
                },
            )
        except IntegrityError as exc:
            # The project was deleted since it was read: the jobs' foreign key
            # refused them. Any other conflict (a twin request) goes on up.
            try:
                catalog.require_project(p_id)
            except MirrorError as missing:
                raise missing from exc
            raise
        self._publish(ids, states, placements)
        log.info("Project<%s> dispatched with CalcPackage<%s>: %d job(s)", p_id, c_id, len(ids))
        return ids

    @mirror_rpc
    def check(self, p_id, c_id, para_name="para.xml"):
        """What ``do`` would find wrong with this project and package, creating nothing.

        Answers ``{"states", "parameters", "problems"}``: the job count, the
        parameter names and one located message per placeholder naming no
        parameter (empty when ``do`` would accept the pair). A parameter file
        that does not parse is refused with its own error.
        """
        p_id, c_id = to_int(p_id, "p_id"), to_int(c_id, "c_id")
        catalog, caller = self.db.catalog, self.caller
        catalog.require_project(p_id, owner=caller.scope)
        if caller.scope is not None:
            catalog.require_package(c_id, user=caller.scope)
        catalog.adapter(c_id)
        states = parse_params(
            catalog.read_project_file(p_id, para_name, owner=caller.scope), para_name
        )
        params = [s.params for s in states]
        return {
            "states": len(states),
            "parameters": sorted(known_names(params)),
            "problems": problems(catalog.inventory(c_id), params),
        }

    @mirror_rpc
    @idempotent
    def submit(
        self,
        script,
        name="",
        ncpus=1,
        time_limit=None,
        environment=None,
        cwd=None,
        stdout=None,
        stderr=None,
        rid=None,
        tags=None,
        preferred=None,
        metadata=None,
        submission_id=None,
        request_id=None,
        sweep_id=None,
    ):
        """Run ``script`` as a one-step job; answer its job id.

        A repeated ``submission_id`` or ``request_id`` answers the same id.
        Each submission starts a sweep of its own unless ``sweep_id`` names
        one of the caller's submission sweeps to join (a batch).
        """
        caller = self.caller
        if submission_id is not None:
            existing = self.db.jobs.by_submission(str(submission_id))
            if existing is not None:
                job_id, owner = existing
                if caller.scope is not None and owner != caller.scope:
                    raise MirrorError(f"submission_id {submission_id!r} is already taken")
                return job_id
        ncpus = check_positive_int(ncpus, "ncpus")
        state = script_state(script, ncpus, check_minutes(time_limit))
        environment = check_environment(environment)
        cwd, stdout, stderr = (
            check_path(v, n) for v, n in ((cwd, "cwd"), (stdout, "stdout"), (stderr, "stderr"))
        )
        if metadata is not None and not isinstance(metadata, dict):
            raise MirrorError("metadata must be an object")
        rid = to_int(rid, "rid", optional=True)
        sweep_id = to_int(sweep_id, "sweep_id", optional=True)
        if sweep_id is not None:
            self.db.sweeps.require(sweep_id, owner=caller.scope, kind="submit")
        pinned = rid is not None
        tags = split_tags(tags)
        if rid is None and preferred:
            machine = self.db.machines.by_name(str(preferred))
            if (
                machine is not None
                and machine["autorun"]
                and set(tags) <= set(machine["tags"] or [])
                and machine["slots"] - machine["used_cores"] >= ncpus
            ):
                rid = machine["rid"]
        if rid is None:
            (rid,) = self._place([ncpus], None, tags)
        else:
            self._place([ncpus], rid, tags)
        if rid is not None:
            check_against_roots(cwd, stdout, stderr, self.db.machines.roots_of(rid), rid)
        else:
            check_against_roots(cwd, stdout, stderr, None, None)
        p_id, c_id, adapter = self.db.submissions.ids()
        check_placeholders(self.db.submissions.inventory(), [state], "the script job")
        extra = {
            "name": str(name or "")[:200],
            "submission_id": None if submission_id is None else str(submission_id),
            "meta": metadata or {},
            "environment": environment,
            "workdir": cwd,
            "stdout_path": stdout,
            "stderr_path": stderr,
        }
        (job_id,) = self.db.jobs.create(
            p_id,
            c_id,
            "",
            [state],
            adapter.step_ids,
            [rid],
            tags,
            extra=extra,
            owner=caller.name,
            within=lambda db, ids: self.requests.record(db, ids[0]),
            pinned=pinned,
            sweep=sweep_id if sweep_id is not None else {"kind": "submit"},
        )
        self._publish([job_id], [state], [rid])
        log.info("Job<%s> submitted as a script%s", job_id, f" ({name})" if name else "")
        return job_id

    def _check_size(self, para_name, states):
        """Refuse a sweep whose stored parameters would exceed ``DISPATCH.max_param_bytes``."""
        limits = self.config.get("DISPATCH") or DEFAULTS["DISPATCH"]
        cap = int(limits["max_param_bytes"])
        size = resolved_bytes(states)
        if size > cap:
            raise MirrorError(
                f"{para_name}: the resolved parameters of its {len(states)} states take "
                f"{size / 2**20:.1f} MiB, over the cap of {cap / 2**20:.1f} MiB "
                "(DISPATCH.max_param_bytes); split the sweep or shorten its values"
            )

    def _place(self, needs, rid, tags):
        """The machine of each job needing ``needs`` cores: ``rid`` when pinned, else chosen.

        Refuses jobs that no known machine could ever run; None where none
        can now (the job waits unplaced for the reconciler).
        """
        machines = self.db.machines
        if rid is not None:
            machines.check_pinned(rid, max(needs), tags)
            return [rid] * len(needs)
        machines.check_unpinned(max(needs), tags)
        return machines.choose(needs, tags)

    def _publish(self, ids, states, placements):
        """Publish the placed jobs just committed; their outbox rows cover a failure."""
        entries = [
            (job_id, machine, ncpus_of(state))
            for job_id, state, machine in zip(ids, states, placements, strict=True)
            if machine is not None
        ]
        delay = (self.config.get("DEBUG") or {}).get("publish_delay", 0)
        publish_placed(self.db, self.queues, entries, delay)


def check_placeholders(inventory, states, para_name):
    """Refuse, naming file, line and name, placeholders the states give no value."""
    found = problems(inventory, [s.params for s in states])
    if found:
        raise MirrorError(refusal(found, para_name, known_names(s.params for s in states)))


def ncpus_of(state):
    """The cores a state's job needs (its NCPUS parameter, 1 by default)."""
    return int(state.params.get("NCPUS", 1))
