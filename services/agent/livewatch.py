"""Live monitoring of a running step: its Progress and Process files, watched with ``stat``.

Every ``MONITOR.poll`` seconds (0.5 by default) each watched file is
``stat``'ed; it is read (Progress) or uploaded (Process data) only when its
size, modification time or inode changed, so a change shows in the job's
record within about a second while hundreds of running jobs cost a few
hundred ``stat`` calls per poll. A report with the last values still goes
every ``MONITOR.interval`` seconds when nothing changed: central counts a
RUNNING job without one as stalled (``machine.ruok``), and a refused report
is how the agent learns its job was taken away.

A configured Progress file that has not appeared once the step ran
``MONITOR.progress_missing_after`` seconds, or when the job's last step ends,
gets one warning event naming the path looked for.
"""

import logging
import os
import time
from pathlib import Path

from adapters.errors import AdapterError, where_of
from adapters.filegen import data_path
from adapters.paths import confine
from adapters.progress import read_progress
from adapters.substitute import substitute
from services.agent.reporting import report
from services.agent.stages import process_values
from services.agent.steps import ADAPTER
from services.common.jobstates import DONE

log = logging.getLogger(__name__)

# The signature of a file not looked at yet: differs from every real one and from None.
UNREAD = object()


def signature(path):
    """What tells that a file changed: ``(mtime_ns, size, inode)``, or None when it is absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class LiveMonitor:
    """The monitored files of one running step, and the values last reported for them."""

    def __init__(self, rt, job, step):
        self.rt, self.job, self.step = rt, job, step
        self.started = time.monotonic()
        self.progress = self.progress_rel = None
        self.items = []
        try:
            self._resolve()
        except AdapterError as exc:
            # The job's own paths are wrong: stages.monitor says so at the end.
            log.warning("Job<%s> monitored files not watched: %s", job["job_id"], exc)
        self.seen = {}
        self.value = None
        self.urls = {}
        self.next_beat = 0.0
        self.retry_at = 0.0

    def _resolve(self):
        job = self.job
        if not job.get("path"):
            return
        root = Path(job["path"])
        adapter = self.rt.workspace.adapter(job["package"])
        if adapter.progress:
            where = where_of(ADAPTER, adapter.progress_line, "attribute path of <Progress>")
            self.progress_rel = substitute(adapter.progress, job["params"], where)
            self.progress = confine(root, self.progress_rel, where)
        self.items = [
            (item, data_path(item, job["params"], root, ADAPTER)) for item in adapter.process
        ]

    @property
    def paths(self):
        """Every watched file."""
        return ([self.progress] if self.progress is not None else []) + [p for _, p in self.items]

    @property
    def poll(self):
        """Seconds until the next look: ``MONITOR.poll`` while there are files to watch."""
        return min(self.rt.poll, self.rt.interval) if self.paths else self.rt.interval

    def changed(self):
        """``[(path, signature)]`` of the files that changed since they were last read."""
        out = []
        for path in self.paths:
            sig = signature(path)
            if sig != self.seen.get(path, UNREAD):
                out.append((path, sig))
        return out

    def tick(self):
        """Warn of a missing Progress file; report the values if a file changed or a beat is due.

        A refused or failed report raises (MirrorError); it is tried again
        ``MONITOR.interval`` seconds later.
        """
        now = time.monotonic()
        if now - self.started >= self.rt.progress_missing_after:
            self.warn_missing()
        if now < self.retry_at:
            return
        changed = self.changed()
        if not changed and now < self.next_beat:
            return
        self.retry_at = now + self.rt.interval
        self.refresh(changed)
        self.retry_at = 0.0
        self.next_beat = now + self.rt.interval

    def refresh(self, changed):
        """Read what changed, upload changed Process files, report every value."""
        rt, job = self.rt, self.job
        for path, sig in changed:
            if path == self.progress:
                value = read_progress(path)
                # A file caught halfway through a rewrite keeps the last good value.
                self.value = value if value is not None or sig is None else self.value
            for item, local in self.items:
                if local == path and sig is not None and local.exists():
                    remote = f"/jobs/{job['job_id']}/process/{item.key}/{local.name}"
                    rt.files.upload(local, remote)
                    self.urls[item.key] = rt.files.url(remote)
        process = process_values(rt, job, self.value, self.urls)
        report(rt, job, {"process": process}, expect=[job["state"]])
        # Recorded once reported: a failed report reads them again next time.
        self.seen.update(changed)

    def warn_missing(self, ending=False):
        """One warning event per job when its configured Progress file never appeared."""
        rt, job = self.rt, self.job
        if self.progress is None or job["job_id"] in rt.progress_warned:
            return
        if signature(self.progress) is not None:
            return
        rt.progress_warned.add(job["job_id"])
        ran = time.monotonic() - self.started
        when = (
            f"when step {self.step} ended" if ending else f"after step {self.step} ran {ran:.0f} s"
        )
        message = (
            f"warning: Progress file {self.progress_rel} (in the job directory) has not "
            f"appeared {when}; progress shows step counts instead"
        )
        log.warning("Job<%s> %s", job["job_id"], message)
        # A step's deferred RUNNING report waits for its end: the warning rides with it.
        report(rt, job, {"message": message}, expect=[job["state"]], defer="_pending" in job)

    def at_end(self):
        """At the step's end: warn if it was the job's last step and no Progress file appeared."""
        others = [s for s in self.job["steps"] if s["id"] != self.step]
        if all(s["state"] == DONE for s in others):
            self.warn_missing(ending=True)
