"""Bulk inserts on PostgreSQL: thousands of rows in one statement with two parameters.

A multi-row INSERT makes SQLAlchemy bind every value of every row and the
server parse one long statement. Here the rows travel as one JSON array,
which the server turns into rows of the table's own type
(``json_populate_recordset``), so every value is read by its column's type;
the values all rows share travel once. Ids are reserved first, in one
statement, so that the rows (and those of other tables naming them) are
written with their ids and nothing has to come back. COPY would be faster
still, but psycopg2 refuses it under the green threads' wait callback.
"""

import json
from datetime import UTC, datetime

from sqlalchemy import text


def supported(db):
    """Whether connection ``db`` is on PostgreSQL."""
    return db.dialect.name == "postgresql"


def reserve_ids(db, table, count):
    """``count`` new ids of ``table``'s serial ``id``, ascending, in one statement."""
    found = db.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
        {"table": table.name, "n": int(count)},
    ).scalars()
    return sorted(found)


def insert_rows(db, table, shared, columns, rows):
    """Insert ``rows`` into ``table`` on connection ``db``, in its transaction.

    Each row is a tuple of values for ``columns``; ``shared`` maps other
    columns to the one value every row has. Columns given neither take their
    model default (a serial id or a server default is left to the server).
    """
    shared = {**defaults(table, set(columns) | set(shared)), **shared}
    names = [*columns, *shared]
    picked = ", ".join([f'r."{name}"' for name in columns] + [f's."{name}"' for name in shared])
    statement = (
        f'INSERT INTO "{table.name}" ({", ".join(f"{chr(34)}{n}{chr(34)}" for n in names)}) '
        f'SELECT {picked} FROM json_populate_recordset(NULL::"{table.name}", :rows) AS r, '
        f'json_populate_record(NULL::"{table.name}", :shared) AS s'
    )
    data = json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=plain)
    db.execute(text(statement), {"rows": data, "shared": json.dumps(shared, default=plain)})


def int_array(values):
    """``values`` (integers) as one PostgreSQL array literal, to bind as a single text."""
    return "{" + ",".join(str(int(v)) for v in values) + "}"


def defaults(table, given):
    """The Python-side defaults of ``table``'s columns not in ``given``, as column values."""
    out = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None or default.is_sequence:
            continue
        if default.is_scalar:
            out[column.name] = default.arg
        elif default.is_callable:
            out[column.name] = default.arg(None)
    return out


def plain(value):
    """A value JSON has no type for, as PostgreSQL reads it: timestamps in ISO 8601."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    raise TypeError(f"{type(value).__name__} cannot be stored in bulk")
