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
    base = _real_root(os.fspath(root))
    # Through pathlib, which folds ``//`` and ``.``: realpath takes what follows
    # an empty component at a link loop for an absolute path.
    joined = str(pathlib.Path(base, relpath))
    resolved = os.path.realpath(joined)
    # realpath stops resolving at a symlink loop and keeps the rest as text,
    # so a later link (``loop/../link_out``) would go unchecked: demand a
    # fully resolved result instead. Without ``..``, a result equal to the
    # plain normalised path met no link (or a loop that no one can walk through).
    plain = resolved == os.path.normpath(joined) and ".." not in relpath.split("/")
    if not plain and os.path.realpath(resolved) != resolved:
        raise _error(what, relpath, "goes through a symbolic link loop")
    if resolved != base and not resolved.startswith(base.rstrip("/") + "/"):
        link = _link_out(base, relpath)
        through = f" through the symbolic link {link}" if link else ""
        raise _error(what, relpath, f"escapes {root_name}{through}")
    return pathlib.Path(resolved)


def _link_out(base: str, relpath: str) -> str | None:
    """``'a/link' -> '/target'``: the first link on ``relpath`` that leads out of ``base``."""
    inside = base.rstrip("/") + "/"
    current = base
    for part in pathlib.PurePath(relpath).parts:
        current = os.path.join(current, part)
        if os.path.islink(current):
            real = os.path.realpath(current)
            if real != base and not real.startswith(inside):
                return f"{os.path.relpath(current, base)!r} -> {os.readlink(current)!r}"
        current = os.path.realpath(current)
    return None


def within(root, path, what: str, root_name: str = JOB_DIR) -> pathlib.Path:
    """`confine` for ``path``, a path already joined onto ``root``: checked again."""
    base = _real_root(os.fspath(root))
    return confine(base, os.path.relpath(os.fspath(path), base), what, root_name)


def _real_root(root: str) -> str:
    """``realpath(root)``, remembered for the few roots a process confines paths to.

    A root whose own path changes to a link later makes the paths under it
    resolve elsewhere, and `confine` refuses them: never the other way round.
    """
    real = _ROOTS.get(root)
    if real is None:
        if len(_ROOTS) >= 1024:
            _ROOTS.clear()
        real = _ROOTS[root] = os.path.realpath(root)
    return real


_ROOTS: dict[str, str] = {}
