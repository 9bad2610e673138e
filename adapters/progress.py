"""Read a ``Process/Progress`` file: its last non-empty line is ``current total``."""

import os

_TAIL = 4096


def parse_progress(text: str) -> tuple[int, int] | None:
    """``(current, total)`` from the last non-empty line, or None if it is not two ints."""
    for line in reversed(text.splitlines()):
        if line.strip():
            fields = line.split()
            if len(fields) != 2:
                return None
            try:
                return int(fields[0]), int(fields[1])
            except ValueError:
                return None
    return None


def read_progress(path) -> tuple[int, int] | None:
    """`parse_progress` over the end of the file at ``path``; None when absent.

    Only the last few kilobytes are read: solvers append to this file for hours.
    """
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL))
            tail = f.read()
    except OSError:
        return None
    text = tail.decode("utf-8", errors="replace")
    if size > _TAIL:
        text = text.split("\n", 1)[-1]  # the first line read may be cut
    return parse_progress(text)
