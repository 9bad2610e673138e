"""Read ``adapter.xml``: how a calculation package is run (SPEC section 4)."""

import dataclasses
import re
import shlex

from lxml import etree

from adapters.errors import AdapterError, SubstitutionError
from adapters.paths import check_relpath
from adapters.placeholders import is_identifier, split_pieces
from adapters.safexml import parse_xml
from adapters.shellquote import check_placements

STEP_TYPES = ("shell", "exec")
# Keys the monitoring answer already uses for the step counter.
RESERVED_PROCESS_KEYS = ("currentstep", "allstep")

# Step ids and Data keys end up in file names, URLs and RPC arguments.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclasses.dataclass(frozen=True)
class FileRule:
    """``<File>``: copy project file ``name`` to ``target`` in the job directory."""

    name: str
    target: str
    create: bool
    unzip: bool
    line: int


@dataclasses.dataclass(frozen=True)
class ParaFileRule:
    """``<ParaFile>``: render template ``source`` to ``target`` (in place when None)."""

    source: str
    target: str | None
    line: int


@dataclasses.dataclass(frozen=True)
class Step:
    """``<ExeArgument>``: one step of the pipeline."""

    id: str
    type: str
    value: str
    workpath: str
    priority: int
    premethod: str | None
    postmethod: str | None
    line: int


@dataclasses.dataclass(frozen=True)
class DataItem:
    """``<Data>`` of ``<Process>`` or ``<Result>``: a file published under ``key``."""

    key: str
    path: str
    line: int


@dataclasses.dataclass(frozen=True)
class Adapter:
    """A parsed and validated ``adapter.xml``; ``steps`` are in run order."""

    name: str
    version: str
    hooks: str | None
    files: tuple[FileRule, ...]
    parafiles: tuple[ParaFileRule, ...]
    steps: tuple[Step, ...]
    progress: str | None
    process: tuple[DataItem, ...]
    result: tuple[DataItem, ...]
    # The line of <Progress>, for messages about its path.
    progress_line: int | None = None

    @property
    def step_ids(self) -> tuple[str, ...]:
        """Step ids in run order."""
        return tuple(step.id for step in self.steps)

    def step(self, step_id: str) -> Step:
        """The step called ``step_id``; KeyError if there is none."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def hook_names(self) -> tuple[str, ...]:
        """Every premethod / postmethod named by a step, without repeats."""
        names = (n for s in self.steps for n in (s.premethod, s.postmethod) if n)
        return tuple(dict.fromkeys(names))


class _Reader:
    """Validation helpers bound to one file name, so every error names it."""

    def __init__(self, filename: str):
        self.filename = filename

    def error(self, node: etree._Element, problem: str) -> AdapterError:
        return AdapterError(self.filename, node.sourceline, problem)

    def attrs(
        self, node: etree._Element, required: tuple[str, ...], optional: tuple[str, ...]
    ) -> dict[str, str]:
        """The attributes of ``node``, refusing unknown and missing ones."""
        found = dict(node.attrib)
        for name in found:
            if name not in required and name not in optional:
                allowed = ", ".join(required + optional)
                raise self.error(
                    node, f"<{node.tag}> has an unknown attribute {name!r} (allowed: {allowed})"
                )
        for name in required:
            if name not in found:
                raise self.error(node, f"<{node.tag}> is missing the required attribute {name!r}")
        return found

    def children(self, node: etree._Element, allowed: tuple[str, ...]) -> list[etree._Element]:
        """The child elements of ``node`` (comments skipped), refusing unknown tags
        and stray text."""
        self.no_text(node, node.text)
        kids = []
        for child in node:
            self.no_text(node, child.tail)
            if not isinstance(child.tag, str):
                continue  # comment or processing instruction
            if child.tag not in allowed:
                expected = ", ".join(f"<{tag}>" for tag in allowed)
                raise self.error(
                    child, f"unknown element <{child.tag}> in <{node.tag}> (expected {expected})"
                )
            kids.append(child)
        return kids

    def no_text(self, node: etree._Element, text: str | None) -> None:
        if text and text.strip():
            raise self.error(node, f"unexpected text {text.strip()[:40]!r} in <{node.tag}>")

    def where(self, node: etree._Element, attr: str) -> str:
        return f"{self.filename}:{node.sourceline}: attribute {attr}"

    def path(
        self,
        node: etree._Element,
        attr: str,
        value: str,
        placeholders: bool = True,
        root_name: str = "the job directory",
    ) -> str:
        """Check a path attribute: relative, not escaping, placeholders well formed."""
        check_relpath(value, self.where(node, attr), root_name)
        if placeholders:
            self.placeholders(node, attr, value)
        return value

    def locator(self, node: etree._Element, what: str):
        """Placeholder errors on ``node``: ``"<problem> in <what>; <hint>"``."""
        line = node.sourceline

        def locate(_offset: int, problem: str) -> SubstitutionError:
            head, sep, hint = problem.partition("; ")
            return SubstitutionError(self.filename, line, f"{head} in {what}{sep}{hint}")

        return locate

    def placeholders(self, node: etree._Element, attr: str, value: str) -> list:
        """Split ``value`` into pieces, refusing malformed placeholders."""
        return split_pieces(value, self.locator(node, f"attribute {attr}"))

    def flag(self, node: etree._Element, attrs: dict, name: str) -> bool:
        value = attrs.get(name, "0").strip()
        if value not in ("0", "1"):
            raise self.error(
                node, f"attribute {name} of <{node.tag}> must be 0 or 1, got {value!r}"
            )
        return value == "1"

    def unique(self, node: etree._Element, seen: dict, key: str, label: str) -> None:
        if key in seen:
            raise self.error(node, f"duplicate {label} (first at line {seen[key]})")
        seen[key] = node.sourceline


def parse_adapter(data: bytes, filename: str = "adapter.xml") -> Adapter:
    """Parse and validate ``adapter.xml``; every error names file, line and problem."""
    root = parse_xml(data, filename)
    r = _Reader(filename)
    if root.tag != "Adapter":
        raise r.error(root, f"root element is <{root.tag}>, expected <Adapter>")
    attrs = r.attrs(root, ("name",), ("version", "hooks"))
    name = attrs["name"].strip()
    if not name:
        raise r.error(root, "attribute name of <Adapter> is empty")
    hooks = attrs.get("hooks")
    if hooks is not None:
        r.path(root, "hooks", hooks, placeholders=False, root_name="the package")
        if not hooks.endswith(".py"):
            raise r.error(root, f"hooks {hooks!r} must name a Python file ending in .py")

    sections: dict[str, etree._Element] = {}
    for child in r.children(root, ("Files", "ParaFiles", "Steps", "Process", "Result")):
        if child.tag in sections:
            first = sections[child.tag].sourceline
            raise r.error(child, f"<{child.tag}> appears twice (first at line {first})")
        sections[child.tag] = child

    steps = _steps(r, sections.get("Steps"), root, hooks)
    progress, progress_line, process = _data_section(
        r, sections.get("Process"), ("Progress", "Data")
    )
    _, _, result = _data_section(r, sections.get("Result"), ("Data",))
    return Adapter(
        name=name,
        version=attrs.get("version", "").strip(),
        hooks=hooks,
        files=_files(r, sections.get("Files")),
        parafiles=_parafiles(r, sections.get("ParaFiles")),
        steps=steps,
        progress=progress,
        process=process,
        result=result,
        progress_line=progress_line,
    )


def _files(r: _Reader, section) -> tuple[FileRule, ...]:
    if section is None:
        return ()
    rules = []
    for node in r.children(section, ("File",)):
        attrs = r.attrs(node, ("name", "target"), ("create", "unzip"))
        rules.append(
            FileRule(
                name=r.path(node, "name", attrs["name"], root_name="the project directory"),
                target=r.path(node, "target", attrs["target"]),
                create=r.flag(node, attrs, "create"),
                unzip=r.flag(node, attrs, "unzip"),
                line=node.sourceline,
            )
        )
    return tuple(rules)


def _parafiles(r: _Reader, section) -> tuple[ParaFileRule, ...]:
    if section is None:
        return ()
    rules = []
    for node in r.children(section, ("ParaFile",)):
        attrs = r.attrs(node, ("source",), ("target",))
        target = attrs.get("target")
        rules.append(
            ParaFileRule(
                source=r.path(node, "source", attrs["source"]),
                target=None if target is None else r.path(node, "target", target),
                line=node.sourceline,
            )
        )
    return tuple(rules)


def _steps(r: _Reader, section, root, hooks: str | None) -> tuple[Step, ...]:
    if section is None:
        raise r.error(root, "adapter has no steps: add <Steps> with at least one <ExeArgument>")
    seen: dict[str, int] = {}
    steps = []
    for node in r.children(section, ("ExeArgument",)):
        attrs = r.attrs(
            node,
            ("id", "value", "priority"),
            ("type", "workpath", "premethod", "postmethod"),
        )
        step_id = attrs["id"]
        if not _NAME.match(step_id):
            raise r.error(
                node,
                f"step id {step_id!r} must be letters, digits, '_', '-' or '.', "
                "not starting with '-' or '.'",
            )
        r.unique(node, seen, step_id, f"step id {step_id!r}")
        steps.append(
            Step(
                id=step_id,
                type=_step_type(r, node, attrs, step_id),
                value=_step_value(r, node, attrs, step_id),
                workpath=r.path(node, "workpath", attrs.get("workpath", ".")),
                priority=_priority(r, node, attrs["priority"], step_id),
                premethod=_hook_name(r, node, attrs, "premethod", step_id, hooks),
                postmethod=_hook_name(r, node, attrs, "postmethod", step_id, hooks),
                line=node.sourceline,
            )
        )
    if not steps:
        raise r.error(section, "adapter has no steps: <Steps> needs at least one <ExeArgument>")
    # sorted() is stable: equal priorities keep document order.
    return tuple(sorted(steps, key=lambda step: step.priority))


def _step_type(r: _Reader, node, attrs: dict, step_id: str) -> str:
    step_type = attrs.get("type", "shell").strip()
    if step_type not in STEP_TYPES:
        raise r.error(node, f"type {step_type!r} of step {step_id!r} must be 'shell' or 'exec'")
    return step_type


def _step_value(r: _Reader, node, attrs: dict, step_id: str) -> str:
    """The command, checked now so a bad package is refused at registration."""
    value = attrs["value"]
    if not value.strip():
        raise r.error(node, f"value of step {step_id!r} is empty")
    if attrs.get("type", "shell").strip() == "exec":
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise r.error(
                node, f"value of step {step_id!r} cannot be split into arguments: {exc}"
            ) from exc
        for word in words:
            r.placeholders(node, "value", word)
    else:
        pieces = r.placeholders(node, "value", value)
        check_placements(pieces, r.locator(node, f"the value of step {step_id!r}"))
    return value


def _priority(r: _Reader, node, text: str, step_id: str) -> int:
    try:
        return int(text.strip(), 10)
    except ValueError as exc:
        raise r.error(node, f"priority {text!r} of step {step_id!r} is not an integer") from exc


def _hook_name(r: _Reader, node, attrs: dict, attr: str, step_id: str, hooks) -> str | None:
    name = attrs.get(attr)
    if name is None:
        return None
    if not is_identifier(name):
        raise r.error(node, f"{attr} {name!r} of step {step_id!r} is not a Python identifier")
    if name.startswith("_"):
        raise r.error(node, f"{attr} {name!r} of step {step_id!r} must not start with '_'")
    if hooks is None:
        raise r.error(
            node,
            f"step {step_id!r} names {attr} {name!r} but <Adapter> has no hooks attribute",
        )
    return name


def _data_section(r: _Reader, section, allowed: tuple[str, ...]):
    """``(progress path or None, its line, Data items)`` of ``<Process>`` or ``<Result>``."""
    if section is None:
        return None, None, ()
    progress = None
    progress_line = None
    seen: dict[str, int] = {}
    items = []
    for node in r.children(section, allowed):
        if node.tag == "Progress":
            attrs = r.attrs(node, ("path",), ())
            if progress_line is not None:
                raise r.error(
                    node, f"<Progress> appears twice in <Process> (first at line {progress_line})"
                )
            progress, progress_line = r.path(node, "path", attrs["path"]), node.sourceline
            continue
        attrs = r.attrs(node, ("key", "path"), ())
        key = attrs["key"]
        if not _NAME.match(key):
            raise r.error(
                node,
                f"Data key {key!r} must be letters, digits, '_', '-' or '.', "
                "not starting with '-' or '.'",
            )
        if section.tag == "Process" and key in RESERVED_PROCESS_KEYS:
            raise r.error(node, f"Data key {key!r} is reserved in <Process>")
        r.unique(node, seen, key, f"Data key {key!r} in <{section.tag}>")
        items.append(
            DataItem(key=key, path=r.path(node, "path", attrs["path"]), line=node.sourceline)
        )
    return progress, progress_line, tuple(items)
