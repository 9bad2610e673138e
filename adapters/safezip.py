"""Extract untrusted zip archives: no entry outside the target, no bombs.

Extraction goes to a private staging directory inside the target first and
is moved into place only when every entry has passed, so a refused archive
leaves the target exactly as it was.
"""

import io
import os
import pathlib
import posixpath
import re
import shutil
import stat
import tempfile
import zipfile

from adapters.errors import PathEscapeError, UnsafeZipError
from adapters.paths import confine

MAX_TOTAL = 2 * 1024**3
MAX_ENTRIES = 10_000
MAX_RATIO = 200
# Small entries compress absurdly well (a page of zeros); the ratio only
# matters once an entry has produced this many bytes.
RATIO_GRACE = 1024 * 1024
_CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def _name_of(source, name: str | None) -> str:
    """How messages call the archive: ``name``, else the file's base name."""
    if name:
        return name
    path = source if isinstance(source, str | os.PathLike) else getattr(source, "name", None)
    if isinstance(path, str | os.PathLike):
        return os.path.basename(os.fspath(path))
    return "archive.zip"


def open_zip(source, name: str) -> zipfile.ZipFile:
    """Open ``source`` (a path, a binary file object or bytes) as a zip archive."""
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise UnsafeZipError(name, None, f"not a readable zip archive: {exc}") from exc


def entry_kind(info: zipfile.ZipInfo) -> str:
    """``"dir"``, ``"file"``, ``"link"`` or ``"special"`` from the entry's mode bits."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "link"
    if info.is_dir() or kind == stat.S_IFDIR:
        return "dir"
    if kind in (0, stat.S_IFREG):
        return "file"
    return "special"


def check_entry(info: zipfile.ZipInfo, archive: str) -> str:
    """The entry's name if it is a safe relative file or directory name."""
    name = info.filename

    def refuse(problem: str) -> UnsafeZipError:
        return UnsafeZipError(archive, None, f"entry {name!r} {problem}")

    if "\0" in name:
        raise refuse("contains a NUL byte")
    if "\\" in name:
        raise refuse("contains a backslash")
    if name.startswith("/") or _DRIVE.match(name):
        raise refuse("has an absolute path")
    if ".." in name.split("/"):
        raise refuse("contains '..'")
    kind = entry_kind(info)
    if kind == "link":
        raise refuse("is a symbolic link")
    if kind == "special":
        raise refuse("is not a regular file or directory")
    if info.flag_bits & 0x1:
        raise refuse("is encrypted")
    return name


def check_archive(
    zf: zipfile.ZipFile, archive: str, max_entries: int = MAX_ENTRIES, max_total: int = MAX_TOTAL
) -> list[zipfile.ZipInfo]:
    """Check every entry name and the declared sizes before anything is read.

    The declared sizes can lie; they only give an early refusal. The real
    limits are enforced on the bytes actually decompressed.
    """
    infos = zf.infolist()
    if len(infos) > max_entries:
        raise UnsafeZipError(
            archive,
            None,
            f"entry {infos[max_entries].filename!r}: archive has {len(infos)} entries, "
            f"more than the limit of {max_entries}",
        )
    declared = 0
    for info in infos:
        check_entry(info, archive)
        declared += info.file_size
        if declared > max_total:
            raise UnsafeZipError(
                archive,
                None,
                f"entry {info.filename!r}: archive declares more than {max_total} bytes",
            )
    return infos


class _Budget:
    """Bytes decompressed so far, against the total and per-entry ratio caps."""

    def __init__(self, archive: str, max_total: int, max_ratio: float):
        self.archive, self.max_total, self.max_ratio = archive, max_total, max_ratio
        self.total = 0

    def spend(self, info: zipfile.ZipInfo, written: int, chunk: int) -> None:
        self.total += chunk
        if self.total > self.max_total:
            raise UnsafeZipError(
                self.archive,
                None,
                f"entry {info.filename!r}: archive expands past the limit of {self.max_total} bytes",
            )
        # zipfile never feeds the decompressor more than compress_size bytes, so
        # this ratio is a true bound whatever file_size claims.
        if written > RATIO_GRACE and written > max(info.compress_size, 1) * self.max_ratio:
            raise UnsafeZipError(
                self.archive,
                None,
                f"entry {info.filename!r} expands more than {self.max_ratio} times (a zip bomb?)",
            )


def _plan(infos, target: pathlib.Path, prefix: str | None, archive: str):
    """``[(info, relative name, final path)]`` for the entries to extract.

    A name repeated in the archive is extracted once, from its last entry.
    """
    plan: dict[str, tuple] = {}
    for info in infos:
        # "./a//b/" and "a/b" are the same place; check_archive refused any "..".
        name = posixpath.normpath(info.filename)
        if prefix is not None:
            if not name.startswith(prefix):
                continue
            name = name[len(prefix) :]
        if name in ("", "."):
            continue
        try:
            # Follows links already in the target: a link there must not be a way out.
            final = confine(target, name, f"entry {info.filename!r}", root_name="the target")
        except PathEscapeError as exc:
            raise UnsafeZipError(
                archive, None, f"entry {info.filename!r} lands outside the target directory"
            ) from exc
        _refuse_clash(info, final, target, archive)
        plan.pop(name, None)
        plan[name] = (info, name, final)
    return list(plan.values())


def _refuse_clash(info, final: pathlib.Path, target: pathlib.Path, archive: str) -> None:
    """Refuse an entry whose place is taken by the wrong kind of thing, so that
    moving the staged files into place cannot fail half way."""
    if entry_kind(info) == "file" and final.is_dir():
        raise UnsafeZipError(archive, None, f"entry {info.filename!r} would replace a directory")
    if entry_kind(info) == "dir" and final.exists() and not final.is_dir():
        raise UnsafeZipError(archive, None, f"entry {info.filename!r} would replace a file")
    for parent in final.parents:
        if parent == target or target not in parent.parents:
            break
        if parent.exists() and not parent.is_dir():
            raise UnsafeZipError(
                archive, None, f"entry {info.filename!r} would need a directory where a file is"
            )


def _write_entry(zf, info, dest: pathlib.Path, budget: _Budget) -> None:
    written = 0
    with zf.open(info) as src, open(dest, "wb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            budget.spend(info, written, len(chunk))
            out.write(chunk)
    # Keep the executable bit of scripts; nothing else of the stored mode.
    executable = (info.external_attr >> 16) & 0o111
    os.chmod(dest, 0o755 if executable else 0o644)


def _move_into_place(staged: pathlib.Path, plan) -> list[str]:
    names = []
    for info, name, final in plan:
        if entry_kind(info) == "dir":
            final.mkdir(parents=True, exist_ok=True)
            continue
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged / name, final)
        names.append(name)
    return names


def extract_zip(
    source,
    target_dir,
    *,
    max_total: int = MAX_TOTAL,
    max_entries: int = MAX_ENTRIES,
    max_ratio: float = MAX_RATIO,
    members_prefix: str | None = None,
    name: str | None = None,
) -> list[str]:
    """Extract ``source`` into ``target_dir`` and return the extracted file names.

    ``source`` is a path, a binary file object or bytes. Refused with
    `UnsafeZipError` naming the entry: names with ``..``, absolute paths, drive
    letters or backslashes, symbolic links and other special files, encrypted
    entries, more than ``max_entries`` entries, more than ``max_total`` bytes
    decompressed, an entry expanding more than ``max_ratio`` times. The caps
    count the bytes actually decompressed. On refusal nothing in ``target_dir``
    has changed. With ``members_prefix`` (e.g. ``"template/"``) only entries
    under it are extracted, with the prefix stripped. Returned names are the
    relative names of the files (directories are not listed), in archive order.
    """
    archive = _name_of(source, name)
    if members_prefix is not None:
        members_prefix = posixpath.normpath(members_prefix) + "/"
    target_dir = pathlib.Path(target_dir)
    created = _first_missing(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = pathlib.Path(os.path.realpath(target_dir))
    try:
        with open_zip(source, archive) as zf:
            infos = check_archive(zf, archive, max_entries, max_total)
            plan = _plan(infos, target, members_prefix, archive)
            return _extract(zf, plan, target, _Budget(archive, max_total, max_ratio), archive)
    except BaseException:
        if created is not None:  # a refused archive leaves no trace, not even its directory
            shutil.rmtree(created, ignore_errors=True)
        raise


def _first_missing(path: pathlib.Path) -> pathlib.Path | None:
    """The outermost directory ``mkdir(parents=True)`` would create, if any."""
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


def _extract(zf, plan, target: pathlib.Path, budget: _Budget, archive: str) -> list[str]:
    """Write every planned entry to a staging directory, then move them into place."""
    staged = pathlib.Path(tempfile.mkdtemp(prefix=".unzip-", dir=target))
    try:
        for info, rel, _ in plan:
            dest = staged / rel
            try:
                if entry_kind(info) == "dir":
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                _write_entry(zf, info, dest, budget)
            except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:
                raise UnsafeZipError(
                    archive, None, f"entry {info.filename!r} cannot be extracted: {exc}"
                ) from exc
        return _move_into_place(staged, plan)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
