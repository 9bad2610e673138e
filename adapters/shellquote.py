"""Where a placeholder may stand in a ``/bin/sh`` command so quoting holds.

A value is inserted as one ``shlex.quote``'d word. That is a literal only
where the shell reads a plain word of the top-level command: inside '...' or
"..." the inserted quotes would close and reopen the author's, after a
backslash or ``$`` they change meaning, in a ``#`` comment a newline ends the
comment, in a here-document quotes mean nothing, and inside backquotes,
``$( )``, ``$(( ))``, ``${ }`` or a process substitution the text is read a
second time (arithmetic evaluates ``a[$(cmd)]`` under bash). The check is an
allow-list: a placeholder is accepted only at top level, at the start of a
word or after a plain word character, in an argument of a command that does
not evaluate its arguments; anywhere the scanner cannot follow the shell,
every later placeholder is refused.
"""

import re
from collections.abc import Callable

from adapters.errors import SubstitutionError
from adapters.placeholders import Piece, Placeholder

# Stands for a placeholder in the scanned text; XML text cannot hold a NUL.
_MARK = "\0"
# Unquoted characters that end a word at top level.
_BREAK = frozenset(" \t\n;&|()<>")
# Characters a placeholder may follow inside a word: the quoted value is then
# glued to plain text the shell does not expand.
_GLUE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:,+@%=-#")
# Commands that evaluate an argument as code, a variable name or arithmetic.
_EVALUATING = frozenset(
    "eval let declare typeset local readonly export source . exec command builtin "
    "trap alias read mapfile readarray getopts unset wait [[ (( sudo".split()
)
# Commands whose ``-v`` option takes a variable name (evaluated under bash).
_DASH_V = frozenset(("printf", "test", "["))
# Reserved words after which the next word is a command name again.
_LEADING = frozenset("if then else elif while until do ! { time".split())
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")

_OPENERS = {
    "`": "inside backquotes (`...`)",
    "$(": "inside a command substitution $( )",
    "<(": "inside a process substitution <( )",
    "$((": "inside arithmetic $(( ))",
    "((": "inside an arithmetic command (( ))",
    "$[": "inside arithmetic $[ ]",
    "${": "inside a parameter expansion ${ }",
}


def check_placements(pieces: list[Piece], locate: Callable[[int, str], SubstitutionError]) -> None:
    """Raise ``locate(offset, problem)`` for the first placeholder standing
    where a shell-quoted value would not stay one literal word."""
    text = "".join(_MARK if isinstance(p, Placeholder) else p for p in pieces)
    marks = [p for p in pieces if isinstance(p, Placeholder)]
    for index, reason in enumerate(_Scanner(text).reasons()):
        if reason:
            name = marks[index].name
            raise locate(
                marks[index].offset,
                f"placeholder {{{name}}} stands {reason}; parameter values are "
                f"shell-quoted for you, so write {{{name}}} as a bare word",
            )


class _Scanner:
    """A conservative reading of one ``sh -c`` command, placeholder by placeholder."""

    def __init__(self, text: str):
        self.text = text
        self.i = 0
        # Open constructs, innermost last: (kind, depth) with depth counting
        # the parentheses or braces that close it.
        self.stack: list[list] = []
        self.heredoc = False
        self.lost: str | None = None  # why the scanner no longer follows the shell
        self.prev = "\n"  # the previous character at top level, as the shell sees it
        self.word: list[str] = []  # the top-level word being read
        self.words: list[str] = []  # the words of the current simple command
        self.redirect = False  # the next word is a redirection target
        self.case = 0  # open case statements
        self.case_body = False

    # -- the verdict for each placeholder ------------------------------------------------
    def reasons(self):
        """Yield, per placeholder in order, why it is refused (None: accepted)."""
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch == _MARK:
                yield self._verdict()
                self._top_char(ch) if not self.stack else None
                self.i += 1
                continue
            if self.stack:
                self._nested(ch)
            else:
                self._top(ch)

    def _verdict(self) -> str | None:
        if self.stack:
            kind = self.stack[-1][0]
            return {
                "'": "inside single quotes",
                '"': "inside double quotes",
                "#": "inside a # comment",
            }.get(kind, _OPENERS.get(kind))
        if self.prev == "\\":
            return "right after a backslash"
        if self.prev == "$":
            return "right after '$'"
        if self.heredoc:
            return "after a here-document (<<)"
        if self.lost:
            return f"after {self.lost}, which the checker cannot follow"
        if self.case and self.case_body:
            return "inside a case statement"
        if self.prev not in _BREAK and self.prev not in _GLUE and self.prev not in "'\"" + _MARK:
            return f"right after {self.prev!r}"
        if self.redirect:
            return None
        command = self._command()
        if command is None:
            if _ASSIGNMENT.match("".join(self.word)):
                return None
            return "in the command name"
        if command in _EVALUATING:
            return f"in an argument of {command!r}, which evaluates its arguments"
        if command in _DASH_V and any(
            w.startswith("-v") for w in [*self.words, "".join(self.word)]
        ):
            return f"in an argument of {command!r} -v, which takes a variable name"
        return None

    def _command(self) -> str | None:
        """The command name of the current simple command; None while it is read."""
        for word in self.words:
            if _ASSIGNMENT.match(word):
                continue
            return word
        return None

    # -- top level -----------------------------------------------------------------------
    def _top(self, ch: str) -> None:
        text, i = self.text, self.i
        if self.prev == "\\":
            self.word.append(ch)
            self.prev = "a"
            self.i += 1
            return
        if ch == "#" and (self.prev in _BREAK):
            self._push("#")
        elif ch in "'\"`":
            self._push(ch)
        elif ch == "$":
            self._dollar()
            return
        elif text.startswith("((", i) and self.prev in _BREAK:
            self._end_word()
            self._push("((", 2)
            self.i += 2
            return
        elif text.startswith(("<(", ">("), i):
            self._end_word()
            self._push("<(", 1)
            self.i += 2
            return
        elif text.startswith("<<", i):
            self.heredoc = True
        self._top_char(ch)
        self.i += 1

    def _top_char(self, ch: str) -> None:
        """Word and command bookkeeping for one top-level character."""
        if ch in "&|" and self.prev in "<>":
            pass  # >& and >| belong to the redirection
        elif ch in _BREAK:
            if ch in "<>" and "".join(self.word).isdigit():
                self.word = []  # a file descriptor number, not a word of the command
            self._end_word()
            if ch in "<>":
                self.redirect = True
            elif ch != " " and ch != "\t":
                self.words = []
                self.redirect = False
        else:
            self.word.append(ch)
        self.prev = ch

    def _end_word(self) -> None:
        if not self.word:
            return
        word = "".join(self.word)
        self.word = []
        if self.redirect:
            self.redirect = False
            return
        if word == "esac" and self.case:
            self.case -= 1
            self.case_body = self.case > 0
            self.words = []
            return
        if self.case and not self.case_body and self.words[-1:] != ["case"] and word == "in":
            self.case_body = True
            return
        if not self.words and word == "case":
            self.case += 1
            self.case_body = False
        if not self.words and word in _LEADING:
            return
        self.words.append(word)

    def _dollar(self) -> None:
        text, i = self.text, self.i
        for opener in ("$((", "$(", "${", "$["):
            if text.startswith(opener, i):
                self._push(opener, 2 if opener == "$((" else 1)
                self.word.append(opener)
                self.i += len(opener)
                return
        if text.startswith(("$'", '$"'), i) and not self._in('"'):
            # $'...' is ANSI-C quoting under bash and a plain '$' under dash.
            self.lost = self.lost or "$' or $\""
        if self.stack:
            self.i += 1
            return
        self._top_char("$")
        self.i += 1

    def _push(self, kind: str, depth: int = 0) -> None:
        self.stack.append([kind, depth])

    # -- inside a construct --------------------------------------------------------------
    def _nested(self, ch: str) -> None:
        kind = self.stack[-1][0]
        text, i = self.text, self.i
        step = 1
        if kind == "'":
            if ch == "'":
                self._pop()
        elif kind == "#":
            if ch == "\n":
                self._pop()
                if not self.stack:
                    self._top_char(ch)
        elif kind == "`":
            if ch == "\\":
                step = 2
            elif ch == "`":
                self._pop()
        elif kind == '"':
            if ch == "\\":
                step = 2
            elif ch == '"':
                self._pop()
            elif ch == "`":
                self._push("`")
            elif ch == "$":
                self._dollar()
                return
        else:
            step = self._code(kind, ch, text, i)
        if not self.stack and step and kind in "'\"`":
            # A closed quote leaves the word going on; the shell sees no '#' or '$' here.
            self.word.append(text[i : i + step])
            self.prev = '"'
        self.i += step

    def _code(self, kind: str, ch: str, text: str, i: int) -> int:
        """One character inside $( ), <( ), $(( )), (( )), $[ ] or ${ }."""
        entry = self.stack[-1]
        if ch == "\\":
            return 2
        if ch in "'\"`":
            self._push(ch)
        elif ch == "$":
            self._dollar()
            return 0
        elif kind in ("$(", "<(") and ch == "#" and text[i - 1 : i] in _BREAK:
            self._push("#")
        elif (
            kind in ("$(", "<(") and re.match(r"(case|esac)\b", text[i:]) and text[i - 1] in _BREAK
        ):
            self.lost = self.lost or "a case statement inside a substitution"
        elif kind in ("$(", "<(") and text.startswith("<<", i):
            self.heredoc = True
        elif kind == "$[":
            entry[1] += {"[": 1, "]": -1}.get(ch, 0)
        elif kind == "${":
            entry[1] += {"{": 1, "}": -1}.get(ch, 0)
        else:
            entry[1] += {"(": 1, ")": -1}.get(ch, 0)
        if entry[1] <= 0:
            self._pop()
            if not self.stack:
                # The expansion glues to the word around it; a '#' after it starts no comment.
                self.word.append(ch)
                self.prev = '"'
        return 1

    def _in(self, kind: str) -> bool:
        return bool(self.stack) and self.stack[-1][0] == kind

    def _pop(self) -> str:
        return self.stack.pop()[0]
