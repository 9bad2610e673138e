"""Which autorun jobs may start: first in, first out, first fit of their cores over the slots.

The scheduler only decides; `services.agent.autorun` starts what it picks.

While the machine's jobs are short, a job spends much of its turn outside its
steps: the claim's round trip, its directory, its files. Up to ``ahead`` jobs
are then started early, without cores: they are claimed and prepared while
the cores run other jobs' steps, and wait in line for cores (``ask``) before
their first step. Only jobs of well under a second get such a start, and only
while every job holding cores is that young: a job claimed early waits on
this machine while another machine might have run it, and a throttle set on
its sweep meanwhile no longer holds it back.
"""

import time
from collections import deque

# A machine's jobs count as short while they hold their cores this many seconds
# on average (a moving average over the last few) and none holds them longer now.
SHORT_JOB = 0.25
# Weight of the newest job in that average.
WEIGHT = 0.2


class Scheduler:
    """The waiting jobs of one resource machine, and the cores its active jobs hold."""

    def __init__(self, slots, ahead=0, clock=time.monotonic):
        self.slots = slots
        # Jobs at most claimed early, while jobs are short.
        self.ahead = ahead
        self.clock = clock
        self.waiting = deque()
        self.active = {}
        self.early = {}  # job_id -> ncpus: claimed ahead of its cores
        self.asking = deque()  # early jobs prepared, waiting for their cores
        self.since = {}  # job_id -> when it took its cores
        self.typical = None  # seconds a job holds its cores, on average

    @property
    def used_cores(self):
        return sum(self.active.values())

    @property
    def short_jobs(self):
        """Whether jobs hold their cores briefly: those seen so far, and those holding them now."""
        if self.typical is None or self.typical >= SHORT_JOB:
            return False
        now = self.clock()
        # A job found again after a restart has no start here: it counts as long.
        return all(now - self.since.get(job_id, -SHORT_JOB) < SHORT_JOB for job_id in self.active)

    def knows(self, job_id):
        """Whether the job waits, is started early, or holds cores already."""
        return self.started(job_id) or any(j == job_id for j, _ in self.waiting)

    def add(self, job_id, ncpus=1):
        """Put a job at the end of the line; False if it is there or active already."""
        if self.knows(job_id):
            return False
        self.waiting.append((job_id, max(int(ncpus or 1), 1)))
        return True

    def hold(self, job_id, ncpus):
        """Count the cores of a job that runs already (one found again after a restart)."""
        self.active[job_id] = ncpus

    def has_cores(self, job_id):
        """Whether the job holds its cores (an early one only once ``pick`` granted them)."""
        return job_id in self.active

    def started(self, job_id):
        """Whether the job is under way here: holding cores, or started early."""
        return job_id in self.active or job_id in self.early

    def ask(self, job_id):
        """An early job is prepared: it waits in line for its cores (``pick`` grants them)."""
        if job_id in self.early and job_id not in self.asking:
            self.asking.append(job_id)

    def pick(self):
        """Hand out the free cores, in order: ``(start, refuse, granted)``.

        ``granted``: early jobs that asked and now hold their cores. ``start``:
        waiting job ids that now hold their cores, then those started early
        (while jobs are short, up to ``ahead``). ``refuse``: the ``(job_id,
        ncpus)`` of jobs needing more cores than the machine has. A job that
        does not fit yet keeps its place; a later, smaller one may go first.
        """
        free = self.slots - self.used_cores
        granted = []
        for job_id in list(self.asking):
            ncpus = self.early[job_id]
            if ncpus <= free:
                self.asking.remove(job_id)
                del self.early[job_id]
                self._take(job_id, ncpus)
                free -= ncpus
                granted.append(job_id)
        ahead = self.ahead if self.short_jobs else 0
        start, refuse = [], []
        for item in list(self.waiting):
            job_id, ncpus = item
            if ncpus > self.slots:
                self.waiting.remove(item)
                refuse.append(item)
            elif ncpus <= free:
                self.waiting.remove(item)
                self._take(job_id, ncpus)
                free -= ncpus
                start.append(job_id)
            elif len(self.early) < ahead:
                self.waiting.remove(item)
                self.early[job_id] = ncpus
                start.append(job_id)
        return start, refuse, granted

    def release(self, job_id):
        """Give back a job's cores (or its early start); True if it had any."""
        if self.early.pop(job_id, None) is not None:
            if job_id in self.asking:
                self.asking.remove(job_id)
            return True
        if self.active.pop(job_id, None) is None:
            return False
        took = self.since.pop(job_id, None)
        if took is not None:
            held = self.clock() - took
            self.typical = (
                held if self.typical is None else (1 - WEIGHT) * self.typical + WEIGHT * held
            )
        return True

    def _take(self, job_id, ncpus):
        self.active[job_id] = ncpus
        self.since[job_id] = self.clock()
