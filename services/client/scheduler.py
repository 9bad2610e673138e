"""The seed-001 scheduler: submission ids over Mirror jobs, placement by cluster, status words.

A seed submission is one Mirror script job. Its submission id (``sub_<uuid>``
unless given) is the job's ``submission_id`` on central, which answers the same
job for the same id; its ``job_id`` (``job_<uuid>`` unless given) is the job's
name. What the seed knows about a job (entrypoint, job id, user, cluster, tags)
rides in the job's metadata under ``SEED_KEY``, so another process can check
and report it.

Clusters whose ``head_address`` is an AMQP URI are on meshes of their own:
the scheduler keeps one client per mesh, places across all of them, and finds
a submission by asking each mesh for its submission id. A bare Mirror job id
names a job of the main mesh.
"""

import getpass
import logging
import os
import threading
import uuid
import warnings

from services.client.clusters import env_pairs
from services.client.connection import MirrorError
from services.client.mirror import Mirror
from services.client.placement import check_cpus, choose, requested_cpus, split_environment
from services.common.jobstates import COMPLETED, FAILED, KILLED, RUNNING

log = logging.getLogger("services.client")

SEED_KEY = "seed001"
#: Mirror's job states in the seed's words; anything not listed is still PENDING.
STATUS = {RUNNING: "RUNNING", COMPLETED: "SUCCEEDED", FAILED: "FAILED", KILLED: "STOPPED"}
UNKNOWN = "UNKNOWN"
# How much of a job's output ``get_job_info`` reads into ``logs``.
LOG_LIMIT = 1 << 20
# How many jobs named by one ``job_id`` are checked for its reuse by the same user.
JOB_SCAN = 1000


def seed_status(state):
    """A Mirror job state in the seed's words (PENDING for QUEUED, PREPARING and READY)."""
    return STATUS.get(state, "PENDING")


def seed_fields(record):
    """The seed's fields of a ``job.query`` record ({} for a job not submitted as a seed job)."""
    meta = record.get("metadata") or {}
    fields = meta.get(SEED_KEY)
    return fields if isinstance(fields, dict) else {}


def same_submission(record, kwargs):
    """Whether ``record`` is the job the ``Mirror.submit`` arguments ``kwargs`` describe."""
    ours = kwargs["metadata"][SEED_KEY]
    theirs = seed_fields(record)
    return theirs.get("entrypoint") == ours["entrypoint"]


def _runtime_env(runtime_env, cluster):
    """``(env_vars, working_dir)`` from the cluster's defaults and the job's ``runtime_env``."""
    if runtime_env is not None and not isinstance(runtime_env, dict):
        raise ValueError(
            "runtime_env must be a dict such as {'env_vars': {...}, 'working_dir': ...}"
        )
    runtime_env = runtime_env or {}
    defaults = cluster.runtime_env if cluster is not None else {}
    env = {
        **env_pairs(defaults.get("env_vars"), "cluster"),
        **env_pairs(runtime_env.get("env_vars"), "runtime_env"),
    }
    cwd = runtime_env.get("working_dir") or defaults.get("working_dir")
    if cwd is not None and not os.path.isabs(str(cwd)):
        raise ValueError(f"runtime_env working_dir must be an absolute path, got {cwd!r}")
    ignored = sorted(set(runtime_env) - {"env_vars", "working_dir"})
    if ignored:
        warnings.warn(
            f"runtime_env keys {', '.join(ignored)} are not supported by Mirror and are ignored "
            "(only env_vars and working_dir are)",
            stacklevel=4,
        )
    return env, cwd


class Scheduler:
    """The seed functions' state: a ``Mirror`` client, the clusters and known submissions."""

    def __init__(self, client, settings):
        self.client = client
        self.settings = settings
        self.clusters = dict(settings.clusters)
        # mesh key -> client; the main mesh's key is None.
        self.clients = {None: client}
        for cluster in self.clusters.values():
            key = cluster.mesh
            if key is None or key in self.clients:
                continue
            same = (client.amqp_uri, client.exchange) == key
            self.clients[key] = client if same else Mirror(*key, timeout=client.timeout)
        self._known = {}
        self._lock = threading.Lock()

    def __repr__(self):
        return f"Scheduler({self.client!r}, clusters={sorted(self.clusters)})"

    def close(self):
        for client in {id(c): c for c in self.clients.values()}.values():
            client.close()

    def meshes(self):
        """``(key, client)`` of each distinct mesh, the main one (key None) first."""
        seen, out = set(), []
        for key, client in self.clients.items():
            if id(client) not in seen:
                seen.add(id(client))
                out.append((key, client))
        return out

    def client_of(self, kwargs):
        """The client of the mesh that prepared ``Mirror.submit`` arguments are for."""
        cluster = self.clusters.get(kwargs["metadata"][SEED_KEY].get("cluster") or "")
        return self.clients.get(cluster.mesh if cluster is not None else None, self.client)

    def machines(self):
        """Every mesh's machines, each tagged with its ``mesh`` key.

        Another mesh that cannot be reached is left out with a warning: the
        main mesh and the others still take jobs.
        """
        out = []
        for key, client in self.meshes():
            try:
                found = client.machines()
            except MirrorError as exc:
                if key is None:
                    raise
                log.warning("the mesh of %s is left out of placement: %s", client, exc)
                continue
            out.extend({**m, "mesh": key} for m in found)
        return out

    def list_clusters(self):
        """The configured clusters with their machine's state (``online``, ``slots``, ...)."""
        machines = {(m["mesh"], m["name"]): m for m in self.machines()}
        out = []
        for cluster in self.clusters.values():
            machine = machines.get((cluster.mesh, cluster.machine)) or {}
            out.append(
                {
                    **cluster.describe(),
                    "rid": machine.get("rid"),
                    "online": bool(machine.get("online")),
                    "slots": machine.get("slots"),
                    "used_cores": machine.get("used_cores"),
                }
            )
        return out

    # -- submitting -----------------------------------------------------------------
    def prepare(
        self,
        entrypoint,
        runtime_env=None,
        job_id=None,
        metadata=None,
        submission_id=None,
        preferred_cluster=None,
        resource_requirements=None,
        tags=None,
    ):
        """The ``Mirror.submit`` arguments of one seed submission (nothing is sent)."""
        if metadata is not None and not isinstance(metadata, dict):
            raise ValueError("metadata must be a dict")
        ncpus = requested_cpus(resource_requirements)
        machines = self.machines()
        check_cpus(ncpus, machines)
        cluster = choose(self.clusters, machines, ncpus, preferred_cluster, tags)
        env, cwd = _runtime_env(runtime_env, cluster)
        literal, exports = split_environment(env)
        user = str((metadata or {}).get("user") or getpass.getuser())
        given_job_id = job_id is not None
        job_id = str(job_id) if given_job_id else f"job_{uuid.uuid4().hex}"
        submission_id = str(submission_id) if submission_id is not None else None
        seed = {
            "entrypoint": entrypoint,
            "job_id": job_id,
            "user": user,
            "cluster": cluster.name if cluster is not None else None,
            "tags": list(tags or ()),
            "submission_id": submission_id or f"sub_{uuid.uuid4().hex}",
        }
        if given_job_id:
            self._check_job_id(job_id, user, seed["submission_id"])
        return {
            "script": "\n".join([*exports, entrypoint]),
            "name": job_id,
            "ncpus": ncpus,
            "environment": literal or None,
            "cwd": cwd,
            "preferred": cluster.machine if cluster is not None else None,
            "metadata": {**(metadata or {}), SEED_KEY: seed},
            "submission_id": seed["submission_id"],
        }

    def _check_job_id(self, job_id, user, submission_id):
        """Refuse a ``job_id`` this user already gave another submission, on any mesh."""
        for _, client in self.meshes():
            for summary in client.jobs(name=job_id, limit=JOB_SCAN):
                self._check_reuse(client.query(summary["job_id"]), job_id, user, submission_id)

    @staticmethod
    def _check_reuse(record, job_id, user, submission_id):
        fields = seed_fields(record)
        if fields.get("user") == user and record.get("submission_id") != submission_id:
            raise RuntimeError(
                f"job_id {job_id!r} is already used by {user}'s submission "
                f"{record.get('submission_id')} (Mirror job {record['job_id']}); "
                "choose another job_id, or omit it to get a generated one"
            )

    def send(self, kwargs, client=None):
        """Submit prepared arguments to their cluster's mesh; answer the Mirror job id.

        A ``submission_id`` already used for another entrypoint is refused
        (``RuntimeError``); for the same one the same job is answered.
        """
        client = client or self.client_of(kwargs)
        mirror_id = client.submit(**kwargs)
        record = client.query(mirror_id)
        if not same_submission(record, kwargs):
            fields = seed_fields(record)
            raise RuntimeError(
                f"submission_id {kwargs['submission_id']!r} is already used by Mirror job "
                f"{mirror_id} (entrypoint {fields.get('entrypoint') or record['params']}, "
                f"job_id {fields.get('job_id') or record.get('name')!r}); use another "
                "submission_id, or omit it to get a generated one"
            )
        with self._lock:
            self._known[kwargs["submission_id"]] = (client, mirror_id)
        return mirror_id

    # -- looking up -----------------------------------------------------------------
    def locate(self, ident):
        """``(client, Mirror job id)`` of a submission id or main-mesh job id; None when unknown."""
        if isinstance(ident, bool):
            return None
        if isinstance(ident, int):
            return self.client, ident
        ident = str(ident)
        if ident.isdigit():
            return self.client, int(ident)
        with self._lock:
            if ident in self._known:
                return self._known[ident]
        found = self._probe(ident)
        if found is not None:
            with self._lock:
                self._known[ident] = found
        return found

    def resolve(self, ident):
        """The Mirror job id of a submission id or Mirror job id; None when unknown."""
        found = self.locate(ident)
        return None if found is None else found[1]

    def _probe(self, submission_id):
        """``(client, job id)`` of ``submission_id`` on the first mesh that has it, or None."""
        for _, client in self.meshes():
            found = client.jobs(submission_id=submission_id, limit=1)
            if found:
                return client, found[0]["job_id"]
        return None

    def located_record(self, ident):
        """``(client, job.query record)`` of a submission, or None when there is no such job."""
        found = self.locate(ident)
        if found is None:
            return None
        client, mirror_id = found
        try:
            return client, client.query(mirror_id)
        except MirrorError as exc:
            if "not existed" in str(exc):
                return None
            raise

    def record(self, ident):
        """The ``job.query`` record of a submission, or None when there is no such job."""
        found = self.located_record(ident)
        return None if found is None else found[1]

    def logs(self, mirror_id, client=None):
        """``(stdout, stderr)`` of the job's current or last step ('' when there is none)."""
        client = client or self.client
        out, err, offsets = [], [], (0, 0)
        size = 0
        try:
            while size < LOG_LIMIT:
                chunk = client.logs(mirror_id, offset_out=offsets[0], offset_err=offsets[1])
                out.append(chunk["stdout"])
                err.append(chunk["stderr"])
                size += len(chunk["stdout"]) + len(chunk["stderr"])
                if (chunk["offset_out"], chunk["offset_err"]) == offsets:
                    break
                offsets = (chunk["offset_out"], chunk["offset_err"])
        except MirrorError as exc:
            log.info("Job<%s> has no logs to read: %s", mirror_id, exc)
        return "".join(out), "".join(err)
