"""Where a placeholder may stand in a ``/bin/sh`` command so quoting holds.

A value is inserted as one ``shlex.quote``'d word. That is only a literal
where the shell reads a fresh word: inside '...' or "..." the quotes of the
inserted word would close and reopen the author's quotes, after a backslash
the first quote is escaped, after ``$`` it becomes ``$'...'`` (ANSI-C quoting,
where backslashes work), in a ``#`` comment a newline in the value ends the
comment, and in a here-document quotes mean nothing. Each of these is refused.
"""

from collections.abc import Callable

from adapters.errors import SubstitutionError
from adapters.placeholders import Piece, Placeholder

# Characters after which a '#' starts a comment.
_WORD_BREAK = frozenset(" \t\n;&|()<>")


def check_placements(pieces: list[Piece], locate: Callable[[int, str], SubstitutionError]) -> None:
    """Raise ``locate(offset, problem)`` for the first placeholder standing
    where a shell-quoted value would not stay one literal word."""
    state = "word"  # word | single | double | comment
    escaped = False  # the previous character was an unquoted backslash
    prev = "\n"  # the previous character in the command, as the shell sees it
    heredoc = False
    for piece in pieces:
        if isinstance(piece, Placeholder):
            reason = _refusal(state, escaped, prev, heredoc)
            if reason:
                raise locate(
                    piece.offset,
                    f"placeholder {{{piece.name}}} stands {reason}; parameter values are "
                    f"shell-quoted for you, so write {{{piece.name}}} as a bare word",
                )
            prev = "'"  # a quoted word: a following '#' is not a comment
            continue
        for ch in piece:
            if escaped:
                escaped, prev = False, "a"
                continue
            if state == "single":
                state = "word" if ch == "'" else state
            elif state == "double":
                if ch == "\\":
                    escaped = True
                elif ch == '"':
                    state = "word"
            elif state == "comment":
                state = "word" if ch == "\n" else state
            elif ch == "\\":
                escaped = True
            elif ch == "'":
                state = "single"
            elif ch == '"':
                state = "double"
            elif ch == "#" and prev in _WORD_BREAK:
                state = "comment"
            elif ch == "<" and prev == "<":
                heredoc = True
            prev = ch


def _refusal(state: str, escaped: bool, prev: str, heredoc: bool) -> str | None:
    if state == "single":
        return "inside single quotes"
    if state == "double":
        return "inside double quotes"
    if state == "comment":
        return "inside a # comment"
    if escaped:
        return "right after a backslash"
    if prev == "$":
        return "right after '$'"
    if heredoc:
        return "after a here-document (<<)"
    return None
