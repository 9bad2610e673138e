"""Errors of the adapters package: each names a file, a line and a problem."""

import re

# "adapter.xml:12: attribute target" -> file, line, description.
_LOCATED = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+)(?:: (?P<what>.*))?$", re.S)


class AdapterError(ValueError):
    """A package, adapter, parameter file or path that cannot be accepted.

    ``str(err)`` is ``"<filename>:<line>: <problem>"``, or
    ``"<filename>: <problem>"`` when the line is unknown, or just the problem
    when there is no file to name (``filename == ""``).
    """

    def __init__(self, filename: str, line: int | None, problem: str):
        self.filename = filename
        self.line = line
        self.problem = problem
        super().__init__(self._render())

    def _render(self) -> str:
        if not self.filename:
            return self.problem
        if self.line is None:
            return f"{self.filename}: {self.problem}"
        return f"{self.filename}:{self.line}: {self.problem}"

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self):
        # The default pickling would call __init__ with the rendered message only.
        return (type(self), (self.filename, self.line, self.problem))


class UnsafeXMLError(AdapterError):
    """XML that is refused for safety: DTDs, entities, oversize input."""


class UnsafeZipError(AdapterError):
    """A zip archive that is refused: an entry escaping its target, a bomb, a link."""


class PathEscapeError(AdapterError):
    """A path that is absolute, holds a NUL byte, or lands outside its root."""


class SubstitutionError(AdapterError):
    """A ``{placeholder}`` that is malformed or names an unknown parameter."""


class HookError(AdapterError):
    """A hook that is not callable by that name, or that raised."""


def split_where(where: str) -> tuple[str, int | None, str]:
    """Split a location such as ``"adapter.xml:12: attribute target"``.

    Returns ``(filename, line, description)``. Text without a ``file:line``
    prefix is all description, with no file (``""``) and no line.
    """
    match = _LOCATED.match(where)
    if match is None:
        return "", None, where
    return match["file"], int(match["line"]), match["what"] or ""


def where_of(filename: str, line: int | None, what: str) -> str:
    """Build the ``where`` text that `split_where` takes apart again."""
    if line is None:
        return f"{filename}: {what}" if filename else what
    return f"{filename}:{line}: {what}"
