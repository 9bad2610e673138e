"""The event relay's bookkeeping: which job events and machine changes are still to publish.

The relay reads ``job_events`` rows above its high-water mark. Ids are handed
out when a row is inserted, but transactions commit in any order, so a lower
id can appear after a higher one was read: ids skipped over are looked for
again for :data:`GAP_WAIT` seconds before they count as gone (a rolled-back
insert, or a job deleted with its events).
"""

import logging
import time
from datetime import UTC, datetime

from services.common.events import machine_event

log = logging.getLogger(__name__)

# Seconds a skipped id is looked for again.
GAP_WAIT = 10.0
# Skipped ids tracked at most; past it the oldest are given up.
MAX_GAPS = 10000
# What of a machine counts as a change worth an event.
MACHINE_FIELDS = ("name", "online", "slots", "used_cores", "running", "queued")


class Relay:
    """What one relay has published: its high-water mark, skipped ids, machine snapshots."""

    def __init__(self, start, clock=time.monotonic):
        self.high = int(start)
        self.gaps = {}  # id -> monotonic deadline
        self.machines = None
        self.clock = clock

    def take(self, rows):
        """Of job events read above the mark (oldest first), those to publish; moves the mark."""
        deadline = self.clock() + GAP_WAIT
        out = []
        for event in rows:
            event_id = event["id"]
            if event_id <= self.high:
                if self.gaps.pop(event_id, None) is not None:
                    out.append(event)
                continue
            for missing in range(self.high + 1, event_id):
                self.gaps[missing] = deadline
            self.high = event_id
            out.append(event)
        if len(self.gaps) > MAX_GAPS:
            for missing in sorted(self.gaps)[: len(self.gaps) - MAX_GAPS]:
                del self.gaps[missing]
        return out

    def pending_gaps(self):
        """Skipped ids still worth looking for (the expired ones are dropped)."""
        now = self.clock()
        for missing in [i for i, until in self.gaps.items() if until < now]:
            del self.gaps[missing]
        return sorted(self.gaps)

    def machine_changes(self, machines):
        """Events of the machines that changed since the last snapshot (none the first time)."""
        snapshot = {m["rid"]: tuple(m.get(f) for f in MACHINE_FIELDS) for m in machines}
        previous, self.machines = self.machines, snapshot
        if previous is None:
            return []
        stamp = datetime.now(UTC).isoformat()
        return [
            machine_event(m, stamp)
            for m in machines
            if previous.get(m["rid"]) != snapshot[m["rid"]]
        ]
