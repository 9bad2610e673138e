"""How an agent's reports reach central: sent, deferred in the bundle, or lingering in the outbox.

One layer holds every way a report waits to share a round trip:

- deferred (``defer``): the change is applied to the job bundle only and is
  sent with the job's next report, merged with it. Before a step starts the
  deferred changes are also written to the job directory's journal, so that
  an agent restarted before sending them learns which step it had started.
  What is not journaled can be done again (directory and files) or learned
  again (a step's end, from its ledger).
- lingering (``linger``): a report that may wait that many seconds in the
  `Outbox` for another call (a claim) to ride with, as one ``job.batch``.
"""

import json
import logging
import os
from pathlib import Path

import eventlet
from eventlet.event import Event

from services.common.errors import MirrorError
from services.common.jobstates import apply_changes, merge_changes

log = logging.getLogger(__name__)

#: The journal of deferred changes, inside a job directory.
JOURNAL = Path(".mirror") / "pending.json"


def report(rt, job, changes, expect=None, *, defer=False, linger=0.0):
    """Report a transition of ``job`` and fold the new record into the bundle.

    ``rt`` gives the machine's ``rid`` and its ``outbox``. With ``defer`` the
    change waits in the bundle; the merged report is checked against what the
    first deferred change expected, since that is the state the database
    still holds. With ``linger`` the report may wait in the outbox.
    """
    pending = job.get("_pending")
    if defer:
        if pending is None:
            pending = job["_pending"] = {"changes": {}, "expect": expect}
        merge_changes(pending["changes"], changes)
        apply_changes(job, changes)
        return job
    if pending is not None:
        merged = {}
        merge_changes(merged, pending["changes"])
        merge_changes(merged, changes)
        changes, expect = merged, pending["expect"] if pending["expect"] else expect
    updated = rt.outbox.report(job["job_id"], rt.rid, changes, expect, linger=linger)
    if (job.pop("_pending", None) or {}).get("journal"):
        drop_journal(job)
    job.update(updated)
    return job


# -- the journal ------------------------------------------------------------------
def write_journal(job):
    """Append the job's deferred changes as one line; the last whole line is the one that counts.

    Appended rather than replaced: a rename over the old file makes the file
    system flush the new one's data (see tests/bench/README.md).
    """
    job["_pending"]["journal"] = True
    saved = {"attempt": job.get("attempts"), **job["_pending"]}
    try:
        with open(Path(job["path"]) / JOURNAL, "a", encoding="utf-8") as out:
            out.write(json.dumps(saved) + "\n")
    except OSError as exc:
        log.warning("Job<%s> journal not written: %s", job["job_id"], exc)


def read_journal(path):
    """The last complete entry of a journal file, or None."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
    return None


def drop_journal(job):
    """Empty the journal once its changes are recorded.

    Emptied rather than removed: removing files slows the machine's next file
    creations (see tests/bench/README.md).
    """
    if not job.get("path"):
        return
    try:
        os.truncate(Path(job["path"]) / JOURNAL, 0)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("Job<%s> journal not emptied: %s", job["job_id"], exc)


def replay_journal(job, job_dirs):
    """Fold in the changes an earlier agent process deferred and never sent; True if any.

    ``job_dirs`` are the job's directories, oldest first. A journal counts only
    for the job's current attempt, and only while the job is still in the
    state those changes expected (else they were sent).
    """
    for root in reversed(job_dirs):
        saved = read_journal(root / JOURNAL)
        if saved is None or saved.get("attempt") != job.get("attempts"):
            continue
        if saved.get("expect") and job["state"] not in saved["expect"]:
            continue
        job["_pending"] = {
            "changes": saved["changes"],
            "expect": saved.get("expect"),
            "journal": True,
        }
        apply_changes(job, saved["changes"])
        log.info("Job<%s> unsent changes found in %s", job["job_id"], root / JOURNAL)
        return True
    return False


# -- the outbox ---------------------------------------------------------------------
class Outbox:
    """Reports waiting to ride with the next call to central, over a `CentralClient`.

    Whoever reports waits for the report's own outcome all the same; a
    report, claim or flush sends everything waiting as one ``job.batch``.
    """

    def __init__(self, central):
        self.central = central
        self._outbox = []
        self._flusher = None

    def claim(self, job_id, rid):
        """Claim a queued job (`CentralClient.claim`), taking the waiting reports along."""
        if self._outbox:
            return self._send(rid, claim=job_id)
        return self.central.claim(job_id, rid)

    def report(self, job_id, rid, changes, expect=None, linger=0.0):
        """Report a transition (`CentralClient.report`); it may wait ``linger`` seconds.

        Reports already waiting go along with this one.
        """
        if linger <= 0 and not self._outbox:
            return self.central.report(job_id, rid, changes, expect)
        entry = {"job_id": job_id, "rid": rid, "changes": changes, "expect": expect}
        entry["done"] = Event()
        self._outbox.append(entry)
        if linger <= 0:
            self._send(rid)
        elif self._flusher is None:
            self._flusher = eventlet.spawn_after(linger, self._flush, rid)
        return entry["done"].wait()

    def _flush(self, rid):
        self._flusher = None
        if self._outbox:
            try:
                self._send(rid)
            except MirrorError as exc:
                # Each waiting report got this error as its outcome.
                log.warning("reports not sent: %s", exc)

    def _send(self, rid, claim=None, retries=None):
        """Send every waiting report (and ``claim``) in one call; answer each on its own.

        The claim's bundle is returned, or MirrorError raised as `claim` would.
        """
        entries, self._outbox = self._outbox, []
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        reports = [{k: e[k] for k in ("job_id", "changes", "expect")} for e in entries]
        try:
            outcomes, claimed = self.central.batch(rid, reports, claim, retries=retries)
        except BaseException as exc:
            for entry in entries:
                entry["done"].send_exception(
                    exc
                    if isinstance(exc, MirrorError)
                    else MirrorError(f"report not sent: {exc!r}")
                )
            raise
        for entry, outcome in zip(entries, outcomes, strict=False):
            if isinstance(outcome, MirrorError):
                entry["done"].send_exception(outcome)
            else:
                entry["done"].send(outcome)
        for entry in entries[len(outcomes) :]:
            entry["done"].send_exception(MirrorError("the report got no answer"))
        if isinstance(claimed, MirrorError):
            raise claimed
        return claimed

    def close(self):
        """Send what waits now, with no retries: the agent is stopping."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self._outbox:
            try:
                self._send(self._outbox[0]["rid"], retries=0)
            except MirrorError as exc:
                log.warning("reports left unsent at shutdown: %s", exc)
