"""The outbox: reports on their way to central, riding together, and kept on disk through outages.

A report usually goes at once, or lingers a moment to ride with the next
claim as one ``job.batch``. When central cannot be reached even after the
client's own retries, the report is *stalled*: written to the spool
(`Spool`, one small JSON file per report under ``<work_root>/.outbox``) and
sent again, in order with every later report, with a backoff of
``backoff[0]`` doubling to ``backoff[1]`` seconds, for as long as it takes.
Whoever reported waits for the outcome meanwhile; its step process keeps
running. Claims wait for central the same way. Nothing is written to disk
while central answers.
"""

import json
import logging
import os
from collections import deque
from pathlib import Path

import eventlet
from eventlet.event import Event

from services.agent.central_client import CentralUnavailable
from services.common.errors import MirrorError

log = logging.getLogger(__name__)

#: Seconds between two tries to reach central while reports are stalled: first, most.
BACKOFF = (1.0, 30.0)
#: Most stalled reports sent in one ``job.batch``.
CHUNK = 200
WIRE = ("job_id", "changes", "expect", "attempt")


def wire(entry):
    """An entry as ``job.batch`` takes it; ``attempt`` only when the job's bundle had one."""
    return {k: entry[k] for k in WIRE if k in entry and (k != "attempt" or entry[k] is not None)}


class Spool:
    """Stalled reports on disk, one JSON file each, named in the order they were stalled."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self._next = 0

    def load(self):
        """The reports an earlier agent process left unsent, oldest first."""
        entries = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("spooled report %s unreadable, dropped: %s", path, exc)
                path.unlink(missing_ok=True)
                continue
            entry["spooled"] = path
            entries.append(entry)
            self._next = max(self._next, int(path.stem) + 1)
        return entries

    def add(self, entry):
        """Write ``entry`` down; a crash mid-write leaves only a ``.tmp`` file, ignored."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self._next:012d}.json"
        self._next += 1
        saved = {**wire(entry), "rid": entry["rid"]}
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                out.write(json.dumps(saved))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            # The report still waits in memory; only an agent restart would lose it.
            log.error("Job<%s> report not spooled to %s: %s", entry["job_id"], path, exc)
            return
        entry["spooled"] = path

    @staticmethod
    def remove(entry):
        path = entry.pop("spooled", None)
        if path is not None:
            Path(path).unlink(missing_ok=True)


class Outbox:
    """Reports waiting to ride with the next call to central, over a `CentralClient`.

    Whoever reports waits for the report's own outcome all the same; a
    report, claim or flush sends everything waiting as one ``job.batch``.
    ``reconnected`` counts the outages ended, so that the agent re-syncs its
    jobs after each (see `services.agent.resync`).
    """

    def __init__(self, central, spool_dir, rid, backoff=BACKOFF):
        self.central = central
        self.rid = rid
        self.backoff = backoff
        self.spool = Spool(spool_dir)
        self._outbox = []
        self._flusher = None
        self._stalled = deque()
        self._redeliverer = None
        self._waiters = []
        self.reconnected = 0
        for entry in self.spool.load():
            entry["done"] = None
            self._stalled.append(entry)
        if self._stalled:
            log.info("%d report(s) of an earlier agent process to send", len(self._stalled))
            self._start_redelivery(first=0.0)

    @property
    def offline(self):
        """Whether reports wait for central to come back."""
        return self._redeliverer is not None

    def claim(self, job_id, rid):
        """Claim a queued job (`CentralClient.claim`), taking the waiting reports along.

        While central is unreachable the claim waits and is tried again.
        """
        retried = False
        while True:
            self.wait_online()
            try:
                if self._outbox:
                    return self._send(rid, claim=job_id, retried=retried)
                return self.central.claim(job_id, rid, retried=retried)
            except CentralUnavailable as exc:
                log.warning("Job<%s> claim waits for central: %s", job_id, exc)
                retried = True
                self._start_redelivery()

    def report(self, job_id, rid, changes, expect=None, linger=0.0, attempt=None):
        """Report a transition (`CentralClient.report`); it may wait ``linger`` seconds.

        Reports already waiting go along with this one.
        """
        entry = {"job_id": job_id, "rid": rid, "changes": changes, "expect": expect}
        entry["attempt"] = attempt
        entry["done"] = Event()
        if self.offline:
            self._stall([entry])
        elif linger <= 0 and not self._outbox:
            try:
                return self.central.report(job_id, rid, changes, expect, attempt)
            except CentralUnavailable as exc:
                log.warning("Job<%s> report waits for central: %s", job_id, exc)
                self._stall([entry], retried=True)
                self._start_redelivery()
        else:
            self._outbox.append(entry)
            if linger <= 0:
                self._send_reports(rid)
            elif self._flusher is None:
                self._flusher = eventlet.spawn_after(linger, self._flush, rid)
        return entry["done"].wait()

    def wait_online(self):
        """Return once no report is stalled (at once while central answers)."""
        while self.offline:
            waiter = Event()
            self._waiters.append(waiter)
            waiter.wait()

    def _flush(self, rid):
        self._flusher = None
        if self._outbox:
            self._send_reports(rid)

    def _send_reports(self, rid):
        try:
            self._send(rid)
        except CentralUnavailable as exc:
            log.warning("reports wait for central: %s", exc)
            self._start_redelivery()

    def _send(self, rid, claim=None, retries=None, retried=False):
        """Send every waiting report (and ``claim``) in one call; answer each on its own.

        The claim's bundle is returned, or MirrorError raised as `claim`
        would. Unreachable central: the reports are stalled and
        CentralUnavailable raised.
        """
        entries, self._outbox = self._outbox, []
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        try:
            outcomes, claimed = self.central.batch(
                rid, [wire(e) for e in entries], claim, retries=retries, retried=retried
            )
        except CentralUnavailable:
            self._stall(entries, retried=True)
            raise
        except BaseException as exc:
            for entry in entries:
                entry["done"].send_exception(
                    exc
                    if isinstance(exc, MirrorError)
                    else MirrorError(f"report not sent: {exc!r}")
                )
            raise
        self._answer(entries, outcomes)
        if isinstance(claimed, MirrorError):
            raise claimed
        return claimed

    def _answer(self, entries, outcomes):
        """Give each entry its outcome; those central did not answer are stalled again."""
        unanswered = []
        for entry, outcome in zip(entries, outcomes, strict=False):
            if isinstance(outcome, CentralUnavailable):
                unanswered.append(entry)
                continue
            self.spool.remove(entry)
            if entry["done"] is None:
                # Spooled by an earlier process: nobody waits, the re-sync follows.
                if isinstance(outcome, MirrorError):
                    log.warning("Job<%s> spooled report refused: %s", entry["job_id"], outcome)
            elif isinstance(outcome, MirrorError):
                entry["done"].send_exception(outcome)
            else:
                entry["done"].send(outcome)
        unanswered += entries[len(outcomes) :]
        if unanswered:
            self._stall(unanswered, retried=True, front=True)
            self._start_redelivery()

    # -- stalled reports ----------------------------------------------------------------
    def _stall(self, entries, retried=False, front=False):
        """Keep ``entries`` on disk until central takes them, in order."""
        for entry in entries:
            entry["retried"] = entry.get("retried") or retried
            if "spooled" not in entry:
                self.spool.add(entry)
        if front:
            self._stalled.extendleft(reversed(entries))
        else:
            self._stalled.extend(entries)

    def _start_redelivery(self, first=None):
        if self._redeliverer is None:
            self._redeliverer = eventlet.spawn(self._redeliver, first)

    def _redeliver(self, first):
        """Send the stalled reports, oldest first, until central takes them all."""
        delay = self.backoff[0] if first is None else first
        try:
            while True:
                eventlet.sleep(delay)
                try:
                    if self._deliver_stalled():
                        break
                except Exception:  # noqa: BLE001 - stalled reports must never be left behind
                    log.exception("stalled reports not delivered")
                delay = min(max(delay * 2, self.backoff[0]), self.backoff[1])
        finally:
            self._redeliverer = None
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                waiter.send()
        self.reconnected += 1
        log.info("central reachable again; stalled reports delivered")

    def _deliver_stalled(self):
        """One try: True once nothing is stalled (central answered every report)."""
        while True:
            chunk = [self._stalled.popleft() for _ in range(min(CHUNK, len(self._stalled)))]
            try:
                outcomes, _ = self.central.batch(
                    self.rid,
                    [wire(e) for e in chunk],
                    retries=0,
                    retried=any(e.get("retried") for e in chunk),
                )
            except CentralUnavailable as exc:
                self._stalled.extendleft(reversed(chunk))
                log.info(
                    "central still unreachable (%d report(s) wait): %s", len(self._stalled), exc
                )
                return False
            answered = len(self._stalled)
            self._answer(chunk, outcomes)
            if len(self._stalled) > answered:
                return False  # some got no answer: tried again after the backoff
            if not self._stalled:
                return True

    def close(self):
        """Send what lingers now, with no retries: the agent is stopping; stalled reports stay on disk."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self._redeliverer is not None:
            self._redeliverer.kill()
            self._redeliverer = None
        if self._outbox and not self._stalled:
            try:
                self._send(self._outbox[0]["rid"], retries=0)
            except MirrorError as exc:
                log.warning("reports left unsent at shutdown: %s", exc)
        elif self._outbox:
            self._stall(self._outbox)
            self._outbox = []
