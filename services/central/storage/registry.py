"""Resource machines: heartbeats, who is online, and where a new job should go."""

import logging
from datetime import timedelta

from sqlalchemy import select

from db.models import Job, Machine
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
        self.stale_after = timedelta(
            seconds=float(agent_config["heartbeat"]) * float(agent_config["offline_after"])
        )

    def heartbeat(self, rid, name, slots, tags, autorun, started_at=None, roots=()):
        """Register machine ``rid`` or refresh what it offers and when it was last heard."""
        stamp = now()
        with self.Session.begin() as session:
            machine = session.get(Machine, rid)
            if machine is None:
                machine = Machine(rid=rid)
                session.add(machine)
                log.info("Machine<%s> registered as %s", rid, name)
            machine.name, machine.slots, machine.tags = name, int(slots), list(tags or [])
            machine.autorun = bool(autorun)
            machine.roots = list(roots or [])
            if started_at or machine.started_at is None:
                machine.started_at = stamp
            machine.last_heartbeat = stamp

    def online(self, machine, stamp=None):
        """Whether ``machine`` sent a heartbeat recently enough."""
        stamp = stamp or now()
        return (
            machine.last_heartbeat is not None
            and stamp - machine.last_heartbeat <= self.stale_after
        )

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
        }

    def ruok(self, rid, stalled_after):
        """The health of machine ``rid``; RUNNING jobs quiet for ``stalled_after`` are stalled."""
        counts = self.jobs.counts_by_machine().get(rid, {})
        stamp = now()
        with self.Session() as session:
            machine = session.get(Machine, rid)
            if machine is None:
                raise MirrorError(f"resource machine is not existed , rid : {rid}")
            running = session.scalars(
                select(Job).where(Job.rid == rid, Job.state.in_(ACTIVE)).order_by(Job.id)
            ).all()
            stalled = [
                j.id
                for j in running
                if j.state == RUNNING
                and stamp - (j.progress_at or j.start_time or j.updated) > stalled_after
            ]
            out = self._dict(machine, counts, stamp)
            out.update(
                queue_length=counts.get("queued", 0),
                running_jobs=[j.id for j in running],
                stalled_jobs=stalled,
                ok=self.online(machine, stamp) and not stalled,
            )
            return out

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

    def choose(self, count, ncpus, tags=()):
        """Placements for ``count`` new jobs: online machines with room, most free cores first.

        Returns a list of rids (None where no online machine matches the tags).
        """
        counts = self.jobs.counts_by_machine()
        stamp = now()
        with self.Session() as session:
            machines = [
                m
                for m in session.scalars(select(Machine)).all()
                if self.online(m, stamp) and set(tags) <= set(m.tags or [])
            ]
        if not machines:
            return [None] * count
        load = {m.rid: counts.get(m.rid, {}).get("cores", 0) for m in machines}
        queued = {m.rid: counts.get(m.rid, {}).get("queued", 0) for m in machines}
        slots = {m.rid: max(int(m.slots), 1) for m in machines}
        out = []
        for _ in range(count):
            # Free cores after what already waits there; ties go to the lower rid.
            rid = max(slots, key=lambda r: (slots[r] - load[r] - queued[r] * ncpus, -r))
            out.append(rid)
            queued[rid] += 1
        return out

    def silent_for(self, period):
        """Rids of machines whose last heartbeat is older than ``period``."""
        cutoff = now() - period
        with self.Session() as session:
            return list(session.scalars(select(Machine.rid).where(Machine.last_heartbeat < cutoff)))

    def unplaced(self, limit=1000):
        """Ids of queued jobs without a machine, oldest first."""
        with self.Session() as session:
            return list(
                session.scalars(
                    select(Job.id)
                    .where(Job.state == QUEUED, Job.rid.is_(None))
                    .order_by(Job.id)
                    .limit(limit)
                )
            )
