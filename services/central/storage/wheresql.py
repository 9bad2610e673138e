"""A SQL prefilter for a ``where`` tree: rows it leaves out can never match.

It only narrows what the database sends back; the exact filter is still
``services.common.where.evaluate``, run on every row that comes through. Each
condition is therefore a superset of the tree's matches, and whatever cannot
be narrowed safely (``not``, ``!=``, text that reads as a number) answers None:
no condition. On PostgreSQL only; on SQLite every row comes through.
"""

from sqlalchemy import Float, and_, case, cast, func, literal, or_, true

from services.central.storage.records import JOBS
from services.common.where import as_number


def _compare(name, op, value):
    """``params[name] op value``, kept true for every value the database cannot judge."""
    if op == "!=":
        # A job without the parameter matches != : nothing narrows it safely.
        return None
    text = JOBS.c.params[name].as_string()
    if isinstance(value, str) and as_number(value) is None:
        if op != "==":
            return None
        return text == literal(value)
    number = as_number(value)
    if number is None:
        return None
    kind = func.json_typeof(JOBS.c.params.op("->")(name))
    sql_op = {"==": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[op]
    # Only JSON numbers are cast (CASE fixes the order, OR would not); text
    # holding a number ("0.6") and a missing parameter are judged in Python.
    return case((kind == "number", cast(text, Float).op(sql_op)(float(number))), else_=true())


def prefilter(tree):
    """A SQL condition that every job matching ``tree`` meets, or None."""
    kind = tree[0]
    if kind == "and":
        parts = [p for p in (prefilter(t) for t in tree[1]) if p is not None]
        return and_(*parts) if parts else None
    if kind == "or":
        parts = [prefilter(t) for t in tree[1]]
        return None if any(p is None for p in parts) else or_(*parts)
    if kind == "cmp":
        op, left, right = tree[1], tree[2], tree[3]
        if left[0] == "name" and right[0] == "value":
            return _compare(left[1], op, right[1])
        if left[0] == "value" and right[0] == "name":
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            return _compare(right[1], flipped, left[1])
        return None
    if kind == "in" and tree[1][0] == "name":
        parts = [_compare(tree[1][1], "==", choice) for choice in tree[2]]
        return None if any(p is None for p in parts) else or_(*parts)
    return None
