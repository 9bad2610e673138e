"""How an agent's reports reach central: sent, deferred in the bundle, or lingering in the outbox.

One layer holds every way a report waits to share a round trip:

- deferred (``defer``): the change is applied to the job bundle only and is
  sent with the job's next report, merged with it. Before a step starts the
  deferred changes are also written to the job directory's journal, so that
  an agent restarted before sending them learns which step it had started.
  What is not journaled can be done again (directory and files) or learned
  again (a step's end, from its ledger).
- lingering (``linger``): a report that may wait that many seconds in the
  outbox (`services.agent.outbox`) for another call (a claim) to ride with,
  as one ``job.batch``; the outbox also keeps reports through outages.

Every report carries the job's ``attempt`` when its bundle has one; a report
of an attempt central has superseded raises `Superseded`.
"""

import json
import logging
import os
import re
from pathlib import Path

from services.common.errors import MirrorError
from services.common.jobstates import apply_changes, merge_changes

log = logging.getLogger(__name__)

#: The journal of deferred changes, inside a job directory.
JOURNAL = Path(".mirror") / "pending.json"

SUPERSEDED = re.compile(r"job \d+ attempt \d+ is superseded by attempt \d+")


class Superseded(MirrorError):
    """Central refused a report: another attempt of the job has begun since this one."""


def attempt_of(job):
    """The attempt a bundle runs under: ``attempt`` of the bundle, else its ``attempts``."""
    attempt = job.get("attempt")
    return attempt if attempt is not None else job.get("attempts")


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
    try:
        updated = rt.outbox.report(
            job["job_id"], rt.rid, changes, expect, linger=linger, attempt=job.get("attempt")
        )
    except MirrorError as exc:
        if SUPERSEDED.search(str(exc)):
            raise Superseded(str(exc)) from exc
        raise
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
    saved = {"attempt": attempt_of(job), **job["_pending"]}
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
        if saved is None or saved.get("attempt") != attempt_of(job):
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
