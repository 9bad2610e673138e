"""How the user commands show things: a console, table cells, state colours, times."""

import os
import sys

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.common.jobstates import (
    COMPLETED,
    FAILED,
    KILLED,
    PREPARING,
    QUEUED,
    READY,
    RUNNING,
)

STATE_STYLES = {
    QUEUED: "dim",
    PREPARING: "cyan",
    READY: "cyan",
    RUNNING: "blue",
    COMPLETED: "green",
    FAILED: "red",
    KILLED: "yellow",
}


def console(stderr=False):
    """A rich console on stdout (or stderr) sized for a terminal or a pipe."""
    stream = sys.stderr if stderr else sys.stdout
    # Piped output: wide enough that tables are not folded, never colours.
    width = None if stream.isatty() or "COLUMNS" in os.environ else 200
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def text(value):
    """A table cell: the value as plain text (never read as rich markup)."""
    if value is None or value == "" or value == []:
        return Text("-")
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return Text(str(value))


def state_text(state):
    return Text(str(state), style=STATE_STYLES.get(state, ""))


def when(iso):
    """``2024-05-01T12:00:03.123+00:00`` -> ``2024-05-01 12:00:03``."""
    if not iso:
        return None
    return iso.replace("T", " ")[:19]


def table(*headers):
    out = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in headers:
        out.add_column(header, overflow="fold")
    return out
