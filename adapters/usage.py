"""Which parameters a package's placeholders name, and which of them a parameter file lacks.

Dispatch runs this before it creates any job, so that a typo such as
``{nxx}`` is refused with its file and line instead of failing every job
when its step starts. Everything here is pure: the caller reads the package
and the parameter file.
"""

import dataclasses
import difflib
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping

from adapters.adapter import Adapter
from adapters.errors import AdapterError, SubstitutionError
from adapters.placeholders import Placeholder, split_pieces
from adapters.substitute import text_form

# At most this many problems are listed in one message; the rest are counted.
MAX_LISTED = 20


@dataclasses.dataclass(frozen=True)
class Use:
    """One ``{name}`` in a package: which file, which line, and where in that line."""

    name: str
    filename: str
    line: int | None
    what: str = ""

    def problem(self, known: Iterable[str] = ()) -> str:
        """The message for this placeholder naming no parameter, with a close match if any."""
        where = self.filename if self.line is None else f"{self.filename}:{self.line}"
        text = f"{where}: unknown parameter {{{self.name}}}"
        if self.what:
            text += f" in {self.what}"
        close = difflib.get_close_matches(self.name, sorted(known), n=1)
        if close:
            text += f" (did you mean {{{close[0]}}}?)"
        return text


@dataclasses.dataclass(frozen=True)
class Inventory:
    """Every placeholder of a package: in adapter.xml and in the templates it ships.

    ``templates`` maps a template's path (relative to the job directory) to its
    uses, or to the error that stops it from being rendered at all.
    """

    adapter: Adapter
    uses: tuple[Use, ...]
    templates: Mapping[str, tuple[Use, ...] | AdapterError]


def _never(offset: int, problem: str) -> SubstitutionError:  # pragma: no cover
    # parse_adapter has checked every attribute's braces already.
    raise AssertionError(problem)


def _names(text: str) -> list[str]:
    return [p.name for p in split_pieces(text, _never) if isinstance(p, Placeholder)]


def _step_names(step) -> list[str]:
    """Placeholders of a step's command, split into words first for ``exec`` as the agent does."""
    if step.type == "exec":
        return [name for word in shlex.split(step.value) for name in _names(word)]
    return _names(step.value)


def adapter_uses(adapter: Adapter, filename: str = "adapter.xml") -> tuple[Use, ...]:
    """Every placeholder in the attributes the agent substitutes, in document order of kind."""
    uses: list[Use] = []

    def add(names: Iterable[str], line: int | None, what: str) -> None:
        uses.extend(Use(name, filename, line, what) for name in dict.fromkeys(names))

    for rule in adapter.files:
        add(_names(rule.name), rule.line, "attribute name of <File>")
        add(_names(rule.target), rule.line, "attribute target of <File>")
    for rule in adapter.parafiles:
        add(_names(rule.source), rule.line, "attribute source of <ParaFile>")
        if rule.target is not None:
            add(_names(rule.target), rule.line, "attribute target of <ParaFile>")
    for step in adapter.steps:
        add(_step_names(step), step.line, f"the value of step {step.id!r}")
        add(_names(step.workpath), step.line, f"the workpath of step {step.id!r}")
    if adapter.progress is not None:
        add(_names(adapter.progress), adapter.progress_line, "the path of <Progress>")
    for item in (*adapter.process, *adapter.result):
        add(_names(item.path), item.line, f"the path of Data {item.key!r}")
    return tuple(uses)


def template_uses(text: str, filename: str) -> tuple[Use, ...]:
    """Every placeholder of a ParaFile template, with its line; malformed braces raise."""

    def locate(offset: int, problem: str) -> SubstitutionError:
        return SubstitutionError(filename, text.count("\n", 0, offset) + 1, problem)

    seen: dict[str, Use] = {}
    for piece in split_pieces(text, locate):
        if isinstance(piece, Placeholder) and piece.name not in seen:
            line = text.count("\n", 0, piece.offset) + 1
            seen[piece.name] = Use(piece.name, filename, line)
    return tuple(seen.values())


def _source_pattern(source: str) -> re.Pattern:
    """What a ParaFile source may name once substituted: placeholders match anything."""
    parts = [
        ".+" if isinstance(p, Placeholder) else re.escape(p)
        for p in split_pieces(posixpath.normpath(source), _never)
    ]
    return re.compile("".join(parts), re.S)


def template_paths(adapter: Adapter, members: Iterable[str]) -> list[str]:
    """The package's template files (paths relative to the job directory) a ParaFile may read."""
    patterns = [_source_pattern(rule.source) for rule in adapter.parafiles]
    return [m for m in members if any(p.fullmatch(m) for p in patterns)]


def inventory(adapter: Adapter, templates: Mapping[str, str]) -> Inventory:
    """The placeholders of ``adapter`` and of the template ``{path: text}`` it ships."""
    found: dict[str, tuple[Use, ...] | AdapterError] = {}
    for path, text in templates.items():
        try:
            found[path] = template_uses(text, path)
        except AdapterError as exc:
            found[path] = exc
    return Inventory(adapter, adapter_uses(adapter), found)


def known_names(states: Iterable[Mapping]) -> set[str]:
    """The parameter names every state gives a value (each state's params mapping)."""
    known: set[str] | None = None
    for params in states:
        known = set(params) if known is None else known & set(params)
    return known or set()


def _sources(rule, states: list[Mapping], known: set[str]) -> set[str]:
    """The template paths one ParaFile rule reads across the states (its placeholders known)."""
    names = _names(rule.source)
    if not names:
        return {posixpath.normpath(rule.source)}
    if not set(names) <= known:
        return set()  # the source attribute itself is reported
    pieces = split_pieces(rule.source, _never)
    out = set()
    for params in states:
        text = "".join(
            text_form(params[p.name]) if isinstance(p, Placeholder) else p for p in pieces
        )
        out.add(posixpath.normpath(text))
    return out


def problems(inv: Inventory, states: Iterable[Mapping]) -> list[str]:
    """Each placeholder that names no parameter of some state, as a located message.

    ``states`` are the parameter mappings of the jobs about to be created.
    A ParaFile whose template is not in the package (a File rule or a step
    makes it later) is checked only when it is rendered.
    """
    states = list(states)
    known = known_names(states)
    found = [use.problem(known) for use in inv.uses if use.name not in known]
    checked: set[str] = set()
    for rule in inv.adapter.parafiles:
        for path in sorted(_sources(rule, states, known) - checked):
            checked.add(path)
            entry = inv.templates.get(path)
            if isinstance(entry, AdapterError):
                found.append(str(entry))
            elif entry is not None:
                found.extend(use.problem(known) for use in entry if use.name not in known)
    return found


def refusal(found: list[str], para_name: str, known: Iterable[str]) -> str:
    """One message for every problem found, listing the names the parameter file does define."""
    listed = found[:MAX_LISTED]
    more = len(found) - len(listed)
    text = "; ".join(listed) + (f"; and {more} more" if more > 0 else "")
    names = ", ".join(sorted(known)) or "none"
    return (
        f"the package's placeholders do not all match {para_name}, so no job was created: "
        f"{text} ({para_name} defines: {names})"
    )
