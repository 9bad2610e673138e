"""The one-line errors of ``mirror``: ``mirror: message`` on stderr."""

import sys


class CommandError(Exception):
    """A user-facing error of a command (printed as ``mirror: message``)."""


def error(message):
    """Print ``mirror: message`` on stderr, on one line."""
    text = " ".join(str(message).split("\n"))
    print(f"mirror: {text}", file=sys.stderr, flush=True)


def fail(message, code=2):
    """Print ``mirror: message`` on stderr and exit with ``code``."""
    print(f"mirror: {message}", file=sys.stderr)
    sys.exit(code)
