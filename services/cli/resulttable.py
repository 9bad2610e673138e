"""``mirror results``: a project's jobs as a table of parameters against Process and Result values.

:func:`build_table` is pure: it takes the answer of ``project.results`` and a
function that turns a value (often an ``ftp://`` URL) into the text of a cell.
"""

import csv
import io
import posixpath
from urllib.parse import unquote, urlsplit

# Progress counters, not values a package produced.
PROGRESS_KEYS = ("currentstep", "allstep")

#: Files of at most this many bytes are shown by their content, when it is one line of text.
INLINE_BYTES = 256


def _keys(rows, field, skip=()):
    """The keys of ``row[field]`` over all rows, in the order they first appear."""
    seen = {}
    for row in rows:
        for key in row.get(field) or {}:
            if key not in skip:
                seen.setdefault(key, None)
    return list(seen)


def _cell(value):
    return "" if value is None else str(value)


def build_table(rows, resolve=_cell):
    """``(headers, groups, body)`` of a project's results.

    ``headers``: ``JOB``, ``STATE``, then one column per parameter, Process key
    and Result key, in the order they first appear; a key used in two groups
    is prefixed ``process.`` or ``result.``. ``groups`` names each column's
    group (``job``, ``param``, ``process``, ``result``). ``body``: one list of
    texts per job; ``resolve(value)`` makes the text of a Process or Result value.
    """
    params = _keys(rows, "params")
    process = _keys(rows, "process", skip=PROGRESS_KEYS)
    result = _keys(rows, "result")
    counts = {}
    for key in (*params, *process, *result):
        counts[key] = counts.get(key, 0) + 1
    columns = [("job", "JOB", None), ("job", "STATE", None)]
    columns += [("param", key, key) for key in params]
    for group, keys in (("process", process), ("result", result)):
        columns += [(group, f"{group}.{key}" if counts[key] > 1 else key, key) for key in keys]
    body = []
    for row in rows:
        line = [str(row["job_id"]), str(row["state"])]
        for group, _, key in columns[2:]:
            values = row.get("params" if group == "param" else group) or {}
            if key not in values:
                line.append("")
            elif group == "param":
                line.append(_cell(values[key]))
            else:
                line.append(resolve(values[key]))
        body.append(line)
    return [c[1] for c in columns], [c[0] for c in columns], body


def to_csv(headers, body):
    """The table as CSV text (a header line, then one line per job)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(body)
    return buffer.getvalue()


def url_name(value):
    """The file name an ``ftp://`` URL ends with (``T.dat``); other values unchanged."""
    parts = urlsplit(value)
    return posixpath.basename(unquote(parts.path).rstrip("/")) or value


def inline_text(data):
    """The text of a small file when it is one line of text, else None."""
    if len(data) > INLINE_BYTES:
        return None
    try:
        lines = [line.strip() for line in data.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        return None
    return lines[0] if len(lines) == 1 else None


def is_url(value):
    return isinstance(value, str) and value.startswith("ftp://")
