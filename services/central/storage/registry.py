"""Resource machines: heartbeats, who is online, and where a new job should go."""

import logging

from sqlalchemy import delete, func, literal, select, update

from db.models import Cleanup, Job, Machine
from services.central.storage.elsewhere import stale_after
from services.central.storage.records import iso, now
from services.central.storage.retry import retry_disconnects
from services.common.errors import MirrorError
from services.common.jobstates import ACTIVE, QUEUED, RUNNING

log = logging.getLogger(__name__)


@retry_disconnects
class Registry:
    """Storage of resource machines and the placement rule of SPEC section 9."""

    def __init__(self, sessionmaker, jobs, agent_config):
        self.Session = sessionmaker
        self.jobs = jobs
        self.stale_after = stale_after(agent_config)

    def heartbeat(self, rid, name, slots, tags, autorun, started_at=None, roots=(), slurm=None):
        """Register machine ``rid`` or refresh what it offers and when it was last heard.

        ``slurm``: a Slurm machine's latest probe of its cluster (None: a local machine).
        Answers the ids of deleted jobs whose leftovers the machine still has to remove.
        """
        stamp = now()
        values = {
            "name": name,
            "slots": int(slots),
            "tags": list(tags or []),
            "autorun": bool(autorun),
            "roots": list(roots or []),
            "slurm": slurm,
            "last_heartbeat": stamp,
        }
        machines = Machine.__table__
        # Typed as the column: SQLite stores what the column's type makes of it.
        since = literal(stamp, machines.c.started_at.type)
        with self.Session.begin() as session:
            # A beat is the call central answers most (every machine, every
            # AGENT.heartbeat seconds): one UPDATE on the table, no row loaded.
            refreshed = session.connection().execute(
                update(machines)
                .where(machines.c.rid == rid)
                .values(
                    **values,
                    started_at=stamp if started_at else func.coalesce(machines.c.started_at, since),
                )
            )
            if refreshed.rowcount == 0:
                session.add(Machine(rid=rid, started_at=stamp, **values))
                log.info("Machine<%s> registered as %s", rid, name)
            return list(
                session.scalars(
                    select(Cleanup.job_id).where(Cleanup.rid == rid).order_by(Cleanup.job_id)
                )
            )

    def cleaned(self, rid, job_ids):
        """Forget the cleanups machine ``rid`` has done."""
        with self.Session.begin() as session:
            session.execute(
                delete(Cleanup).where(Cleanup.rid == rid, Cleanup.job_id.in_(list(job_ids)))
            )

    def online(self, machine, stamp=None):
        """Whether ``machine`` sent a heartbeat recently enough."""
        stamp = stamp or now()
        return (
            machine.last_heartbeat is not None
            and stamp - machine.last_heartbeat <= self.stale_after
        )

    def is_online(self, rid):
        """Whether machine ``rid`` is known and sent a heartbeat recently enough."""
        with self.Session() as session:
            machine = session.get(Machine, rid) if rid is not None else None
            return machine is not None and self.online(machine)

    def list(self):
        """Every machine as ``machine.list`` answers it, its load counted from jobs."""
        counts = self.jobs.counts_by_machine()
        stamp = now()
        with self.Session() as session:
            machines = session.scalars(select(Machine).order_by(Machine.rid)).all()
            return [self._dict(m, counts.get(m.rid, {}), stamp) for m in machines]

    def _dict(self, machine, counts, stamp):
        """The ``machine.list`` entry of ``machine``."""
        return {
            "rid": machine.rid,
            "name": machine.name,
            "online": self.online(machine, stamp),
            "slots": machine.slots,
            "running": counts.get("running", 0),
            "used_cores": counts.get("cores", 0),
            "queued": counts.get("queued", 0),
            "tags": machine.tags,
            "autorun": machine.autorun,
            "roots": machine.roots,
            "last_heartbeat": iso(machine.last_heartbeat),
            "slurm": machine.slurm,
        }

    def ruok(self, rid, stalled_after, owner=None):
        """The health of machine ``rid``; RUNNING jobs quiet for ``stalled_after`` are stalled.

        With ``owner``, the job id lists hold only that user's jobs.
        """
        counts = self.jobs.counts_by_machine().get(rid, {})
        stamp = now()
        with self.Session() as session:
            machine = session.get(Machine, rid)
            if machine is None:
                raise MirrorError(f"resource machine is not existed , rid : {rid}")
            active = session.scalars(
                select(Job).where(Job.rid == rid, Job.state.in_(ACTIVE)).order_by(Job.id)
            ).all()
            stalled = [
                j
                for j in active
                if j.state == RUNNING
                and stamp - (j.progress_at or j.start_time or j.updated) > stalled_after
            ]

            def shown(jobs):
                return [j.id for j in jobs if owner is None or j.owner == owner]

            online = self.online(machine, stamp)
            pinned = [] if online else self._pinned_queued(session, rid, owner)
            out = self._dict(machine, counts, stamp)
            out.update(
                queue_length=counts.get("queued", 0),
                running_jobs=shown(active),
                stalled_jobs=shown(stalled),
                waiting_jobs=pinned,
                waiting=(
                    f"{len(pinned)} pinned job(s) wait for this machine: {offline(machine)}"
                    if pinned
                    else None
                ),
                ok=online and not stalled,
            )
            return out

    @staticmethod
    def _pinned_queued(session, rid, owner=None):
        query = select(Job.id).where(Job.rid == rid, Job.state == QUEUED, Job.pinned.is_(True))
        if owner is not None:
            query = query.where(Job.owner == owner)
        return list(session.scalars(query.order_by(Job.id)))

    def by_name(self, name):
        """The online machine called ``name``, or None."""
        # Counts first: SQLite's pool has one connection, so no session may nest.
        counts = self.jobs.counts_by_machine()
        stamp = now()
        with self.Session() as session:
            for machine in session.scalars(select(Machine).where(Machine.name == name)):
                if self.online(machine, stamp):
                    return self._dict(machine, counts.get(machine.rid, {}), stamp)
        return None

    def roots_of(self, rid):
        """The allowed roots of machine ``rid``, None if it is unknown."""
        with self.Session() as session:
            machine = session.get(Machine, rid)
            return list(machine.roots or []) if machine is not None else None

    def choose(self, needs, tags=()):
        """Machines for new unpinned jobs needing ``needs`` cores each (one entry a job).

        Only online autorun machines whose slots hold the job and whose tags
        match; the most free cores first, ties to the lower rid. None where no
        such machine is online now: that job waits unplaced.
        """
        counts = self.jobs.counts_by_machine()
        stamp = now()
        with self.Session() as session:
            machines = [
                m
                for m in session.scalars(select(Machine)).all()
                if m.autorun and self.online(m, stamp) and set(tags) <= set(m.tags or [])
            ]
        load = {m.rid: counts.get(m.rid, {}).get("cores", 0) for m in machines}
        queued = {m.rid: counts.get(m.rid, {}).get("queued", 0) for m in machines}
        slots = {m.rid: max(int(m.slots), 1) for m in machines}
        fitting = {}
        out = []
        for ncpus in needs:
            if ncpus not in fitting:
                fitting[ncpus] = [r for r in slots if slots[r] >= ncpus]
            if not fitting[ncpus]:
                out.append(None)
                continue
            # Free cores after what already waits there.
            rid = max(fitting[ncpus], key=lambda r: (slots[r] - load[r] - queued[r] * ncpus, -r))
            out.append(rid)
            queued[rid] += 1
        return out

    def check_unpinned(self, ncpus, tags=()):
        """Refuse jobs of ``ncpus`` cores and ``tags`` that no known autorun machine could ever run.

        With no autorun machine known yet, they wait for one.
        """
        with self.Session() as session:
            machines = [m for m in session.scalars(select(Machine)).all() if m.autorun]
        if not machines:
            return
        tagged = [m for m in machines if set(tags) <= set(m.tags or [])]
        if not tagged:
            raise MirrorError(f"no resource machine is tagged {' and '.join(tags)}")
        largest = max(int(m.slots) for m in tagged)
        if ncpus > largest:
            kind = f" tagged {' and '.join(tags)}" if tags else ""
            raise MirrorError(
                f"no resource machine{kind} has {ncpus} cores (the largest has {largest})"
            )

    def check_pinned(self, rid, ncpus, tags=()):
        """Refuse jobs of ``ncpus`` cores and ``tags`` dispatched to machine ``rid`` that it cannot run."""
        with self.Session() as session:
            machine = session.get(Machine, rid)
            if machine is None:
                raise MirrorError(f"resource machine is not existed , rid : {rid}")
            missing = sorted(set(tags) - set(machine.tags or []))
            if missing:
                raise MirrorError(f"resource machine {rid} is not tagged {' and '.join(missing)}")
            if ncpus > int(machine.slots):
                raise MirrorError(
                    f"resource machine {rid} has {machine.slots} cores; a job needs {ncpus}"
                )

    def waiting(self, job_id):
        """Why queued job ``job_id`` waits, in one line; None if it does not wait."""
        stamp = now()
        with self.Session() as session:
            job = session.get(Job, job_id)
            if job is None or job.state != QUEUED:
                return None
            if job.rid is None:
                tags = f" tagged {' and '.join(job.tags)}" if job.tags else ""
                return (
                    f"waits for an online autorun resource machine with {job.ncpus} core(s){tags}"
                )
            machine = session.get(Machine, job.rid)
            if machine is None:
                return f"waits for resource machine {job.rid}, which is not known"
            if not self.online(machine, stamp):
                if job.pinned:
                    return f"pinned to resource machine {job.rid}, which is {offline(machine)}"
                return (
                    f"resource machine {job.rid} is {offline(machine)}; the job moves if it is lost"
                )
            if not machine.autorun:
                return f"resource machine {job.rid} runs jobs only when asked (manual)"
            return f"waits for {job.ncpus} free core(s) on resource machine {job.rid}"

    def silent_for(self, period):
        """Rids of machines whose last heartbeat is older than ``period``."""
        cutoff = now() - period
        with self.Session() as session:
            return list(session.scalars(select(Machine.rid).where(Machine.last_heartbeat < cutoff)))

    def autorun_online(self):
        """Rids of the online machines in autorun."""
        stamp = now()
        with self.Session() as session:
            machines = session.scalars(select(Machine).where(Machine.autorun.is_(True))).all()
            return [m.rid for m in machines if self.online(m, stamp)]

    def unplaced(self, limit=1000):
        """``(id, ncpus, tags)`` of queued jobs without a machine, oldest first."""
        with self.Session() as session:
            return [
                (job_id, ncpus, tuple(tags or ()))
                for job_id, ncpus, tags in session.execute(
                    select(Job.id, Job.ncpus, Job.tags)
                    .where(Job.state == QUEUED, Job.rid.is_(None))
                    .order_by(Job.id)
                    .limit(limit)
                )
            ]


def offline(machine):
    """How long ``machine`` is silent, for a waiting reason."""
    if machine.last_heartbeat is None:
        return "offline (never heard from)"
    return f"offline (last heartbeat {iso(machine.last_heartbeat)})"
