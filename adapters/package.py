"""Check a calculation package zip at registration, without running any of it."""

import ast
import posixpath
import re
import zipfile

from adapters.adapter import Adapter, FileRule, parse_adapter
from adapters.errors import AdapterError, UnsafeZipError
from adapters.placeholders import Placeholder, split_pieces
from adapters.safexml import parse_xml
from adapters.safezip import check_archive, open_zip
from adapters.usage import Inventory, inventory, template_paths

ADAPTER_FILE = "adapter.xml"
TEMPLATE_DIR = "template/"
# adapter.xml and the hooks module are read into memory: keep them small.
MAX_MEMBER_BYTES = 1_000_000
# Templates bigger than this are checked only when a job renders them.
MAX_TEMPLATE_BYTES = 10_000_000


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: str) -> bytes:
    """Read one entry, stopping at the cap whatever its header claims."""
    try:
        with zf.open(info) as member:
            data = member.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        raise UnsafeZipError(
            archive, None, f"entry {info.filename!r} cannot be read: {exc}"
        ) from exc
    if len(data) > MAX_MEMBER_BYTES:
        raise UnsafeZipError(
            archive, None, f"{info.filename} is larger than {MAX_MEMBER_BYTES} bytes"
        )
    return data


def hook_functions(source: bytes, filename: str) -> set[str]:
    """Names of the top-level ``def`` functions of a hooks module, found with ``ast``."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise AdapterError(filename, exc.lineno, f"syntax error: {exc.msg}") from exc
    except ValueError as exc:  # source with NUL bytes
        raise AdapterError(filename, None, f"cannot be parsed: {exc}") from exc
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def _has_placeholder(text: str) -> bool:
    # The adapter has been parsed already, so placeholders are well formed.
    return any(isinstance(p, Placeholder) for p in split_pieces(text, _never))


def _never(_offset, problem):  # pragma: no cover - parse_adapter checked the syntax
    raise AssertionError(problem)


def _target_pattern(rule: FileRule) -> re.Pattern:
    """What a File rule's target may turn into: placeholders match anything."""
    parts = [
        ".*" if isinstance(p, Placeholder) else re.escape(p)
        for p in split_pieces(posixpath.normpath(rule.target), _never)
    ]
    below = "(/.*)?" if rule.unzip else ""  # an unzipped archive fills a directory
    return re.compile("".join(parts) + below, re.S)


def _from_file_rule(source: str, files: tuple[FileRule, ...]) -> bool:
    """Whether a File rule may put ``source`` in the job directory at run time."""
    return any(_target_pattern(rule).fullmatch(source) for rule in files)


def _check_hooks(zf, names: dict, adapter: Adapter, archive: str, xml: bytes) -> None:
    hooks = posixpath.normpath(adapter.hooks)
    if hooks not in names:
        root_line = parse_xml(xml, ADAPTER_FILE).sourceline  # the line of <Adapter hooks=...>
        raise AdapterError(
            ADAPTER_FILE, root_line, f"hooks module {adapter.hooks!r} is missing from the package"
        )
    defined = hook_functions(_read_member(zf, names[hooks], archive), hooks)
    for step in adapter.steps:
        for attr in ("premethod", "postmethod"):
            hook = getattr(step, attr)
            if hook and hook not in defined:
                raise AdapterError(
                    ADAPTER_FILE,
                    step.line,
                    f"{attr} {hook!r} of step {step.id!r} is not a function defined at "
                    f"top level in {hooks}",
                )


def _check_parafiles(names: dict, adapter: Adapter) -> None:
    for rule in adapter.parafiles:
        if _has_placeholder(rule.source):
            continue
        source = posixpath.normpath(rule.source)
        if TEMPLATE_DIR + source in names or _from_file_rule(source, adapter.files):
            continue
        raise AdapterError(
            ADAPTER_FILE,
            rule.line,
            f"ParaFile source {rule.source!r} is not in the package "
            f"(expected {TEMPLATE_DIR}{source})",
        )


def inspect_package(zip_bytes: bytes, filename: str = "package.zip") -> Adapter:
    """Validate a calculation package and return its parsed adapter.

    Checks, in order: the archive is a zip whose entries are all safe (names,
    links, entry count, declared size); ``adapter.xml`` is at its root and
    valid; the hooks module it names is in the package and defines, at top
    level, every premethod / postmethod (read with ``ast``, never imported);
    every ParaFile source without placeholders is under ``template/`` (or is
    put in place by a File rule). Errors name the file inside the zip.
    """
    with open_zip(zip_bytes, filename) as zf:
        infos = check_archive(zf, filename)
        names = {posixpath.normpath(i.filename): i for i in infos if not i.is_dir()}
        if ADAPTER_FILE not in names:
            raise AdapterError(filename, None, f"{ADAPTER_FILE} is missing")
        xml = _read_member(zf, names[ADAPTER_FILE], filename)
        adapter = parse_adapter(xml, ADAPTER_FILE)
        if adapter.hooks is not None:
            _check_hooks(zf, names, adapter, filename, xml)
        _check_parafiles(names, adapter)
    return adapter


def package_inventory(
    zip_bytes: bytes, adapter: Adapter, filename: str = "package.zip"
) -> Inventory:
    """The placeholders of a registered package: its adapter's and its ParaFile templates'.

    Templates are read as the agent reads them (UTF-8, undecodable bytes kept);
    one over ``MAX_TEMPLATE_BYTES`` is left to the job that renders it.
    """
    templates = {}
    with open_zip(zip_bytes, filename) as zf:
        infos = {
            posixpath.normpath(i.filename)[len(TEMPLATE_DIR) :]: i
            for i in check_archive(zf, filename)
            if not i.is_dir() and i.filename.startswith(TEMPLATE_DIR)
        }
        for path in template_paths(adapter, infos):
            info = infos[path]
            if info.file_size > MAX_TEMPLATE_BYTES:
                continue
            with zf.open(info) as member:
                data = member.read(MAX_TEMPLATE_BYTES + 1)
            if len(data) <= MAX_TEMPLATE_BYTES:
                templates[path] = data.decode("utf-8", errors="surrogateescape")
    return inventory(adapter, templates)
