"""Which autorun jobs may start: first in, first out, first fit of their cores over the slots.

The scheduler only decides; `services.agent.autorun` starts what it picks.
"""

from collections import deque


class Scheduler:
    """The waiting jobs of one resource machine, and the cores its active jobs hold."""

    def __init__(self, slots):
        self.slots = slots
        self.waiting = deque()
        self.active = {}

    @property
    def used_cores(self):
        return sum(self.active.values())

    def knows(self, job_id):
        """Whether the job waits or holds cores already."""
        return job_id in self.active or any(j == job_id for j, _ in self.waiting)

    def add(self, job_id, ncpus=1):
        """Put a job at the end of the line; False if it is there or active already."""
        if self.knows(job_id):
            return False
        self.waiting.append((job_id, max(int(ncpus or 1), 1)))
        return True

    def hold(self, job_id, ncpus):
        """Count the cores of a job that runs already (one found again after a restart)."""
        self.active[job_id] = ncpus

    def pick(self):
        """Take every waiting job whose cores are free, in order: ``(start, refuse)``.

        ``start`` lists the job ids that now hold their cores; ``refuse`` the
        ``(job_id, ncpus)`` of jobs needing more cores than the machine has.
        A job that does not fit yet keeps its place; a later, smaller one may
        start before it.
        """
        free = self.slots - self.used_cores
        start, refuse = [], []
        for item in list(self.waiting):
            job_id, ncpus = item
            if ncpus > self.slots:
                self.waiting.remove(item)
                refuse.append(item)
            elif ncpus <= free:
                self.waiting.remove(item)
                self.active[job_id] = ncpus
                free -= ncpus
                start.append(job_id)
        return start, refuse

    def release(self, job_id):
        """Give back a job's cores; True if it held any (then `pick` may find more)."""
        return self.active.pop(job_id, None) is not None
