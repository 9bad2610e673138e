"""The parameters of a dispatch sweep held in memory, to answer ``where`` filters at once.

A dispatch sweep gets all its jobs in the transaction that makes it, and a
job's parameters never change, so what its jobs' parameters are is read once
and answers every later filter of the sweep: a ``where`` tree is evaluated
per parameter value (a range of sorted numbers, one lookup per text), not per
job, into sets of positions combined with ``and``, ``or`` and ``not``. The
results match ``services.common.where.evaluate`` job by job (unit-tested
against it). A job deleted since stays in an index: the rows read by id
afterwards leave it out.
"""

import json
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict

from sqlalchemy import Text, cast, func, select

from services.central.storage.records import JOBS
from services.common.where import MISSING, as_number, compare

# Jobs parsed per round while an index is built; the process yields between rounds.
LOAD_ROUND = 10000
# Between two jobs' JSON texts: a control character, never raw in valid JSON.
SEPARATOR = "\x1e"
# Jobs held in every index of one process together (B9's sweep of three
# parameters takes about 90 bytes a job); the least recently used go past it.
MAX_JOBS = 500_000


class Column:
    """One parameter's value at each position; the lookups are built on first use."""

    def __init__(self, values):
        self.values = values
        self._numbers = None

    def _split(self):
        """Sorted numbers with their positions; texts, NaNs and missing positions apart."""
        if self._numbers is None:
            found, where, texts, nans, missing = [], [], {}, [], []
            for pos, value in enumerate(self.values):
                if value is MISSING:
                    missing.append(pos)
                    continue
                kind = type(value)
                number = value if kind is int or kind is float else as_number(value)
                if number is None:
                    # Only str(value) decides how a value that reads as no number compares.
                    texts.setdefault(str(value), []).append(pos)
                elif number != number:
                    nans.append(pos)
                else:
                    found.append(number)
                    where.append(pos)
            ranks = sorted(range(len(found)), key=found.__getitem__)
            numbers = [found[i] for i in ranks]
            order = array("l", [where[i] for i in ranks])
            self._numbers = (numbers, order, texts, nans, missing)
        return self._numbers

    def match(self, op, literal):
        """Positions whose value satisfies ``value op literal``."""
        number = as_number(literal)
        if number is not None and number != number:
            # A NaN literal is rare: judge each value as the evaluator does.
            return {p for p, value in enumerate(self.values) if compare(op, value, literal)}
        numbers, order, texts, nans, missing = self._split()
        out = set()
        if number is not None:
            lo, hi = bisect_left(numbers, number), bisect_right(numbers, number)
            spans = {
                "==": ((lo, hi),),
                "!=": ((0, lo), (hi, len(numbers))),
                "<": ((0, lo),),
                "<=": ((0, hi),),
                ">": ((hi, len(numbers)),),
                ">=": ((lo, len(numbers)),),
            }[op]
            for start, end in spans:
                out.update(order[start:end])
            if op == "!=":
                # NaN differs from every number; a text or a missing value differs too.
                out.update(nans, missing)
                for positions in texts.values():
                    out.update(positions)
            return out
        # A literal that reads as no number never equals a value that reads as one.
        if op in ("==", "!="):
            equal = texts.get(str(literal), ())
            if op == "==":
                return set(equal)
            out.update(order, nans, missing)
            for text, positions in texts.items():
                if text != str(literal):
                    out.update(positions)
            return out
        for text, positions in texts.items():
            if compare(op, text, literal):
                out.update(positions)
        return out


class SweepIndex:
    """The job ids of a sweep in order and a ``Column`` per parameter name."""

    def __init__(self, ids, params):
        self.ids = array("q", ids)
        names = set().union(*params)
        self.columns = {
            name: Column([row.get(name, MISSING) for row in params]) for name in sorted(names)
        }
        self.size = len(self.ids)

    def column(self, name):
        column = self.columns.get(name)
        if column is None:
            column = self.columns[name] = Column([MISSING] * self.size)
        return column

    def select(self, tree):
        """The positions of the jobs that ``tree`` (a parsed ``where``) matches."""
        kind = tree[0]
        if kind == "and":
            parts = sorted((self.select(part) for part in tree[1]), key=len)
            out = parts[0]
            for part in parts[1:]:
                out = out & part
            return out
        if kind == "or":
            out = set()
            for part in tree[1]:
                out |= self.select(part)
            return out
        if kind == "not":
            return set(range(self.size)) - self.select(tree[1])
        if kind == "in":
            name = tree[1]
            if name[0] != "name":
                hit = any(compare("==", name[1], choice) for choice in tree[2])
                return set(range(self.size)) if hit else set()
            column = self.column(name[1])
            out = set()
            for choice in tree[2]:
                out |= column.match("==", choice)
            return out
        op, left, right = tree[1], tree[2], tree[3]
        if left[0] == "name" and right[0] == "value":
            return self.column(left[1]).match(op, right[1])
        if left[0] == "value" and right[0] == "name":
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            return self.column(right[1]).match(flipped, left[1])
        if left[0] == "value":
            return set(range(self.size)) if compare(op, left[1], right[1]) else set()
        first, second = self.column(left[1]).values, self.column(right[1]).values
        return {p for p in range(self.size) if compare(op, first[p], second[p])}

    def ids_after(self, positions, after):
        """The ids at ``positions`` above ``after``, in increasing order (a generator)."""
        start = bisect_right(self.ids, after)
        if len(positions) * 8 >= self.size - start:
            # Dense: walking the positions in order beats sorting the set.
            for pos in range(start, self.size):
                if pos in positions:
                    yield self.ids[pos]
        else:
            for pos in sorted(p for p in positions if p >= start):
                yield self.ids[pos]


def _read(session, sweep_id):
    """The ids of the sweep's jobs and their parameters as JSON texts, in the same order.

    Two aggregates over one pass of the rows, so that the database sends one
    row (a list of ids and one text) instead of a row per job: that costs a
    sixth of the CPU in this process. The two follow the same row order.
    """
    texts = func.coalesce(cast(JOBS.c.params, Text), "{}")
    if session.get_bind().dialect.name == "postgresql":
        ids, joined = func.array_agg(JOBS.c.id), func.string_agg(texts, SEPARATOR)
    else:
        ids, joined = func.group_concat(JOBS.c.id), func.group_concat(texts, SEPARATOR)
    ids, joined = session.execute(select(ids, joined).where(JOBS.c.sweep_id == sweep_id)).one()
    if not ids:
        return [], []
    if isinstance(ids, str):
        ids = [int(job_id) for job_id in ids.split(",")]
    return ids, joined.split(SEPARATOR)


def load(session, sweep_id):
    """A ``SweepIndex`` of the jobs of ``sweep_id`` read now, yielding while it parses."""
    ids, texts = _read(session, sweep_id)
    if any(a > b for a, b in zip(ids, ids[1:], strict=False)):
        order = sorted(range(len(ids)), key=ids.__getitem__)
        ids, texts = [ids[i] for i in order], [texts[i] for i in order]
    params = []
    for start in range(0, len(texts), LOAD_ROUND):
        # One parse per round: much faster than one json.loads per job.
        rows = json.loads("[" + ",".join(texts[start : start + LOAD_ROUND]) + "]")
        params.extend(row if isinstance(row, dict) else {} for row in rows)
        # time.sleep is eventlet's in the central process: a yield to other calls.
        time.sleep(0)
    return SweepIndex(ids, params)


class IndexCache:
    """``SweepIndex`` per sweep id, least recently used dropped past ``MAX_JOBS`` jobs."""

    def __init__(self, max_jobs=MAX_JOBS):
        self.max_jobs = max_jobs
        self.entries = OrderedDict()
        self.lock = threading.Lock()

    def get(self, session, sweep_id):
        """The index of ``sweep_id``, read on first use."""
        with self.lock:
            index = self.entries.get(sweep_id)
            if index is not None:
                self.entries.move_to_end(sweep_id)
                return index
        # Read outside the lock: two first uses at once read twice, nothing worse.
        index = load(session, sweep_id)
        with self.lock:
            self.entries[sweep_id] = index
            total = sum(entry.size for entry in self.entries.values())
            while total > self.max_jobs and len(self.entries) > 1:
                _, dropped = self.entries.popitem(last=False)
                total -= dropped.size
        return index

    def drop(self, sweep_id):
        """Forget the index of ``sweep_id`` (a deleted sweep)."""
        with self.lock:
            self.entries.pop(sweep_id, None)
