"""Read a parameter file (``para.xml``) and split it into states (SPEC section 5).

Escapes inside a multi-state value: ``\\;`` is a literal ``;`` and ``\\\\`` a
literal backslash; a backslash before any other character is kept as it is.
A parameter without ``multistate="1"`` is taken verbatim, no escapes at all.
"""

import dataclasses
import itertools
import math
import re

from adapters.errors import AdapterError
from adapters.paths import check_relpath
from adapters.placeholders import is_identifier
from adapters.safexml import parse_xml

TYPES = ("int", "float", "str", "bool", "file")
MODES = ("zip", "product")
# The type a parameter has when its <Param> does not say.
_DEFAULT_TYPES = {"NCPUS": "int", "TIME_LIMIT": "float"}
DEFAULT_NCPUS = 1
DEFAULT_STATE_NAME = "default"

_INT = re.compile(r"^[+-]?[0-9]+$")
_TRUE = frozenset(("true", "1", "yes"))
_FALSE = frozenset(("false", "0", "no"))
# One escape, one separator, or a run of plain characters.
_SPLIT_TOKEN = re.compile(r"\\(.)|;|[^\\;]+|\\$", re.S)


@dataclasses.dataclass(frozen=True)
class State:
    """One job's parameters: ``name`` reads like ``mach=0.5,alpha=0``."""

    index: int
    name: str
    params: dict


@dataclasses.dataclass(frozen=True)
class _Param:
    name: str
    values: tuple  # typed values, one for a single-state parameter
    texts: tuple[str, ...]  # each value's text as written, for state names
    multistate: bool
    line: int


def split_values(text: str) -> list[str]:
    """Split a multi-state value on ``;``, honouring ``\\;`` and ``\\\\``."""
    if "\\" not in text:
        return text.split(";")  # the common case, and the fast one
    values, current = [], []
    for match in _SPLIT_TOKEN.finditer(text):
        token = match.group(0)
        if token == ";":
            values.append("".join(current))
            current = []
        elif match.group(1) is not None:
            escaped = match.group(1)
            current.append(escaped if escaped in ";\\" else token)
        else:
            current.append(token)
    values.append("".join(current))
    return values


def join_values(values: list[str]) -> str:
    """The inverse of `split_values`: escape ``\\`` and ``;`` and join with ``;``."""
    return ";".join(v.replace("\\", "\\\\").replace(";", "\\;") for v in values)


def _convert(kind: str, text: str, name: str, fail) -> tuple[object, str]:
    """``(typed value, text as written)``; ``fail(problem)`` builds the error."""
    if kind == "str":
        return text, text
    stripped = text.strip()
    if kind == "int":
        if not _INT.match(stripped):
            raise fail(f"parameter {name!r} value {stripped!r} is not an int")
        return int(stripped), stripped
    if kind == "float":
        try:
            if "_" in stripped:
                raise ValueError(stripped)  # float() would accept 1_000
            number = float(stripped)
        except ValueError as exc:
            raise fail(f"parameter {name!r} value {stripped!r} is not a float") from exc
        if not math.isfinite(number):
            raise fail(f"parameter {name!r} value {stripped!r} is not a finite float")
        return number, stripped
    if kind == "bool":
        lowered = stripped.lower()
        if lowered in _TRUE:
            return True, stripped
        if lowered in _FALSE:
            return False, stripped
        raise fail(f"parameter {name!r} value {stripped!r} is not a bool (true/false, 1/0, yes/no)")
    # file: the name of a project file, kept inside the project directory.
    return stripped, stripped


def _reserved(name: str, kind: str, converted: list[tuple[object, str]], fail) -> None:
    """``NCPUS``: a positive int. ``TIME_LIMIT``: a positive number of minutes."""
    if name == "NCPUS":
        if kind != "int":
            raise fail(f'NCPUS must have type="int", not {kind!r}')
        for value, text in converted:
            if value < 1:
                raise fail(f"NCPUS must be a positive int, got {text!r}")
    elif name == "TIME_LIMIT":
        if kind not in ("int", "float"):
            raise fail(f'TIME_LIMIT must have type="int" or type="float", not {kind!r}')
        for value, text in converted:
            if value <= 0:
                raise fail(f"TIME_LIMIT must be a positive number of minutes, got {text!r}")


def _element_text(node, fail) -> str:
    """The text of ``<Param>``: comments inside are skipped, elements refused."""
    parts = [node.text or ""]
    for child in node:
        if isinstance(child.tag, str):
            raise fail(f"<Param> must hold only text, found element <{child.tag}>")
        parts.append(child.tail or "")
    return "".join(parts)


def _read_param(node, filename: str) -> _Param:
    line = node.sourceline

    def fail(problem: str) -> AdapterError:
        return AdapterError(filename, line, problem)

    for attr in node.attrib:
        if attr not in ("name", "type", "multistate"):
            raise fail(
                f"<Param> has an unknown attribute {attr!r} (allowed: name, type, multistate)"
            )
    name = node.get("name")
    if name is None:
        raise fail("<Param> is missing the required attribute 'name'")
    if not is_identifier(name):
        raise fail(
            f"parameter name {name!r} is not an identifier "
            "(letters, digits and '_', not starting with a digit, not a Python keyword)"
        )
    kind = node.get("type", _DEFAULT_TYPES.get(name, "str")).strip()
    if kind not in TYPES:
        raise fail(f"parameter {name!r} has unknown type {kind!r} (expected {', '.join(TYPES)})")
    flag = node.get("multistate", "0").strip()
    if flag not in ("0", "1"):
        raise fail(f"attribute multistate of parameter {name!r} must be 0 or 1, got {flag!r}")
    text = _element_text(node, fail)
    if flag == "1":
        if not text.strip():
            raise fail(f"multistate parameter {name!r} has no values")
        raw = split_values(text)
    else:
        raw = [text]
    converted = [_convert(kind, piece, name, fail) for piece in raw]
    values = tuple(value for value, _ in converted)
    if kind == "file":
        for value in values:
            check_relpath(
                value, f"{filename}:{line}: parameter {name!r}", root_name="the project directory"
            )
    _reserved(name, kind, converted, fail)
    return _Param(name, values, tuple(t for _, t in converted), flag == "1", line)


def _read(data: bytes, filename: str, max_bytes: int) -> tuple[str, list[_Param]]:
    """The states mode and the declared parameters, validated."""
    root = parse_xml(data, filename, max_bytes=max_bytes)
    if root.tag != "Para":
        raise AdapterError(
            filename, root.sourceline, f"root element is <{root.tag}>, expected <Para>"
        )
    for attr in root.attrib:
        if attr != "states":
            raise AdapterError(
                filename,
                root.sourceline,
                f"<Para> has an unknown attribute {attr!r} (allowed: states)",
            )
    mode = root.get("states", "zip").strip()
    if mode not in MODES:
        raise AdapterError(
            filename, root.sourceline, f"states must be 'zip' or 'product', got {mode!r}"
        )
    if root.text and root.text.strip():
        raise AdapterError(filename, root.sourceline, "unexpected text in <Para>")
    params: list[_Param] = []
    seen: dict[str, int] = {}
    for node in root:
        if node.tail and node.tail.strip():
            raise AdapterError(filename, node.sourceline, "unexpected text in <Para>")
        if not isinstance(node.tag, str):
            continue
        if node.tag != "Param":
            raise AdapterError(
                filename,
                node.sourceline,
                f"unknown element <{node.tag}> in <Para> (expected <Param>)",
            )
        param = _read_param(node, filename)
        if param.name in seen:
            raise AdapterError(
                filename,
                param.line,
                f"duplicate parameter {param.name!r} (first at line {seen[param.name]})",
            )
        seen[param.name] = param.line
        params.append(param)
    _check_zip(mode, params, filename)
    return mode, params


def _check_zip(mode: str, params: list[_Param], filename: str) -> None:
    multi = [p for p in params if p.multistate]
    if mode != "zip" or not multi:
        return
    expected = len(multi[0].values)
    for param in multi[1:]:
        if len(param.values) != expected:
            raise AdapterError(
                filename,
                param.line,
                f"multistate parameter {param.name!r} has {len(param.values)} values, "
                f"expected {expected}",
            )


def _count(mode: str, params: list[_Param]) -> int:
    counts = [len(p.values) for p in params if p.multistate]
    if not counts:
        return 1
    return math.prod(counts) if mode == "product" else counts[0]


def _check_limit(count: int, max_states: int, filename: str) -> None:
    if count > max_states:
        raise AdapterError(
            filename,
            None,
            f"parameter file gives {count} states, more than the limit of {max_states}",
        )


def count_states(data: bytes, filename: str = "para.xml", *, max_bytes: int = 10_000_000) -> int:
    """How many states (jobs) ``data`` gives, validating it but not expanding it."""
    mode, params = _read(data, filename, max_bytes)
    return _count(mode, params)


def resolved_bytes(states) -> int:
    """About how many bytes the resolved parameters of ``states`` take once stored.

    Numbers count as 24 bytes; text by its length. One value repeated in every
    state counts every time, as it is stored with every job.
    """
    return sum(
        len(name) + (len(value) if isinstance(value, str) else 24)
        for state in states
        for name, value in state.params.items()
    )


def parse_params(
    data: bytes,
    filename: str = "para.xml",
    *,
    max_bytes: int = 10_000_000,
    max_states: int = 100_000,
) -> list[State]:
    """Parse a parameter file into its states, in order.

    ``states="zip"`` pairs the i-th values of every multi-state parameter;
    ``states="product"`` takes every combination, the first parameter varying
    slowest. ``NCPUS`` is added with value 1 where the file does not set it.
    """
    mode, params = _read(data, filename, max_bytes)
    _check_limit(_count(mode, params), max_states, filename)
    base = {p.name: p.values[0] for p in params}  # document order; multistate filled below
    base.setdefault("NCPUS", DEFAULT_NCPUS)
    multi = [p for p in params if p.multistate]
    if not multi:
        return [State(0, DEFAULT_STATE_NAME, base)]
    names = [p.name for p in multi]
    columns = [list(zip(p.values, p.texts, strict=True)) for p in multi]
    if mode == "zip":
        combos = zip(*columns, strict=True)
    else:
        combos = itertools.product(*columns)
    states = []
    for index, combo in enumerate(combos):
        state_params = base.copy()
        state_params.update(zip(names, (value for value, _ in combo), strict=True))
        label = ",".join(f"{n}={text}" for n, (_, text) in zip(names, combo, strict=True))
        states.append(State(index, label, state_params))
    return states
