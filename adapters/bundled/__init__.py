"""The calculation packages and projects that ship with Mirror (``demo``, ``script``, ``trivial``).

Each lives in ``adapters/bundled/<name>/`` as plain files: ``package/`` is what
goes into the package zip, ``project/`` the project's input files.
"""

import io
import os
import pathlib
import zipfile

BUNDLED_DIR = pathlib.Path(__file__).resolve().parent
# A fixed timestamp makes the zip bytes depend on the files' contents only.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = frozenset(("__pycache__",))
_SKIP_SUFFIXES = (".pyc", ".pyo", ".zip")


def names() -> tuple[str, ...]:
    """The bundled package names, sorted."""
    return tuple(sorted(p.parent.name for p in BUNDLED_DIR.glob("*/package") if p.is_dir()))


def _folder(name: str, part: str) -> pathlib.Path:
    folder = BUNDLED_DIR / name / part
    if name not in names() or not folder.is_dir():
        raise ValueError(f"no bundled {part} {name!r} (known: {', '.join(names())})")
    return folder


def _walk(folder: pathlib.Path) -> list[tuple[str, pathlib.Path]]:
    """``(relative posix name, path)`` of every file under ``folder``, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith(".") or filename.endswith(_SKIP_SUFFIXES):
                continue
            path = pathlib.Path(dirpath, filename)
            found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found)


def package_zip(name: str) -> bytes:
    """The zip of bundled package ``name``, built in memory; the same bytes every time."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for rel, path in _walk(_folder(name, "package")):
            info = zipfile.ZipInfo(rel, date_time=_EPOCH)
            info.create_system = 3  # unix, so external_attr carries the mode
            # Fixed modes too: a checkout's executable bits must not change the bytes.
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def project_files(name: str) -> dict[str, bytes]:
    """The files of bundled project ``name``: relative name -> content."""
    return {rel: path.read_bytes() for rel, path in _walk(_folder(name, "project"))}


def write_zips(out_dir=BUNDLED_DIR) -> list[pathlib.Path]:
    """Write ``<name>.zip`` of every bundled package into ``out_dir``."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names():
        path = out / f"{name}.zip"
        path.write_bytes(package_zip(name))
        written.append(path)
    return written
