"""Split text into literal pieces and ``{name}`` placeholders.

The grammar is small on purpose: ``{name}`` with ``name`` a Python identifier
is a placeholder, ``{{`` and ``}}`` are literal braces, and any other brace is
an error, so that a typo never passes silently as literal text.
"""

import dataclasses
import keyword
import re
from collections.abc import Callable

from adapters.errors import SubstitutionError

_BRACE = re.compile(r"[{}]")
_HINT = "a placeholder is {name} with name an identifier; write literal braces as {{ and }}"


@dataclasses.dataclass(frozen=True)
class Placeholder:
    """One ``{name}`` in a text, with its offset (for line numbers)."""

    name: str
    offset: int


Piece = str | Placeholder

# Given an offset in the text and a problem, the error to raise.
Locate = Callable[[int, str], SubstitutionError]


def is_identifier(name: str) -> bool:
    """True for a Python identifier that is not a keyword."""
    return name.isidentifier() and not keyword.iskeyword(name)


def split_pieces(text: str, locate: Locate) -> list[Piece]:
    """Split ``text`` into literal strings and `Placeholder` items, in order.

    Adjacent literals are merged, ``{{`` / ``}}`` already turned into single
    braces. A malformed brace raises the error ``locate(offset, problem)`` builds.
    """
    pieces: list[Piece] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = _next_brace(text, i)
        literal.append(text[i:j])
        if j == n:
            break
        pair = text[j : j + 2]
        if pair in ("{{", "}}"):
            literal.append(pair[0])
            i = j + 2
            continue
        column = j - text.rfind("\n", 0, j)
        if text[j] == "}":
            raise locate(j, f"unmatched '}}' at column {column}; {_HINT}")
        close = text.find("}", j + 1)
        if close == -1:
            raise locate(j, f"unmatched '{{' at column {column}; {_HINT}")
        inner = text[j + 1 : close]
        if not is_identifier(inner):
            if "{" in inner or "\n" in inner or len(inner) > 40:
                problem = f"unmatched '{{' at column {column}"
            else:
                problem = f"bad placeholder {text[j : close + 1]!r} at column {column}"
            raise locate(j, f"{problem}; {_HINT}")
        if joined := "".join(literal):
            pieces.append(joined)
        literal = []
        pieces.append(Placeholder(inner, j))
        i = close + 1
    if joined := "".join(literal):
        pieces.append(joined)
    return pieces


def _next_brace(text: str, start: int) -> int:
    """Offset of the next ``{`` or ``}`` at or after ``start``, or ``len(text)``."""
    match = _BRACE.search(text, start)
    return match.start() if match else len(text)


def names(pieces: list[Piece]) -> tuple[str, ...]:
    """The placeholder names in ``pieces``, in order, without repeats."""
    return tuple(dict.fromkeys(p.name for p in pieces if isinstance(p, Placeholder)))
