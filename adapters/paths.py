"""Keep every path from an adapter or a parameter inside its root directory."""

import os
import pathlib
import re

from adapters.errors import PathEscapeError, split_where

_DRIVE = re.compile(r"^[A-Za-z]:")


JOB_DIR = "the job directory"


def _error(where: str, path: str, problem: str) -> PathEscapeError:
    filename, line, what = split_where(where)
    subject = f"{what} {path!r}" if what else f"path {path!r}"
    return PathEscapeError(filename, line, f"{subject} {problem}")


def _refuse_absolute(path: str, where: str, root_name: str) -> None:
    if not path:
        raise _error(where, path, "is empty")
    if "\0" in path:
        raise _error(where, path, "contains a NUL byte")
    # A leading backslash or a drive letter is absolute to Windows tools and to
    # zip programs; refuse them too rather than guess who reads the path later.
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        raise _error(where, path, f"is absolute; paths must be relative to {root_name}")


def check_relpath(path: str, where: str, root_name: str = JOB_DIR) -> str:
    """Check ``path`` lexically: relative, no NUL, never climbing above its root.

    ``where`` locates the path for the error message, as in
    ``"adapter.xml:5: attribute target"``. Backslashes count as separators so
    that ``..\\..\\x`` is refused as well. Returns ``path`` unchanged.
    Placeholders (``{model}``) are ordinary characters here; the substituted
    path is checked again with `confine`.
    """
    _refuse_absolute(path, where, root_name)
    depth = 0
    for part in re.split(r"[/\\]", path):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                raise _error(where, path, f"escapes {root_name}")
        else:
            depth += 1
    return path


def confine(root, relpath: str, what: str, root_name: str = JOB_DIR) -> pathlib.Path:
    """Resolve ``root/relpath`` and return it if it stays inside ``root``.

    Symbolic links that exist are followed, so a link pointing out of the root
    is caught. Raises `PathEscapeError` naming ``what`` and the path when
    ``relpath`` is empty, absolute, holds a NUL byte, or lands outside ``root``.
    The result may be ``root`` itself (``"."``). ``root_name`` is how messages
    call the root (``"the job directory"``, ``"the project directory"``).
    """
    _refuse_absolute(relpath, what, root_name)
    base = pathlib.Path(os.path.realpath(root))
    target = pathlib.Path(os.path.realpath(base / relpath))
    # realpath stops resolving at a symlink loop and keeps the rest as text,
    # so a later link (``loop/../link_out``) would go unchecked: demand a
    # fully resolved result instead.
    if pathlib.Path(os.path.realpath(target)) != target:
        raise _error(what, relpath, "goes through a symbolic link loop")
    if target != base and base not in target.parents:
        raise _error(what, relpath, f"escapes {root_name}")
    return target
