"""Helpers for the adapters tests: fixture files and zip builders."""

import io
import pathlib
import stat
import zipfile

import pytest

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@pytest.fixture
def fixture_bytes():
    """Read a fixture file: ``fixture_bytes("adapter/ok_full.xml")``."""
    return lambda rel: (FIXTURES / rel).read_bytes()


def build_zip(entries) -> bytes:
    """A zip from ``(name, data)`` or ``(name, data, mode)`` items, in order.

    ``mode`` is the full st_mode stored in external_attr (e.g. ``stat.S_IFLNK | 0o777``).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in entries:
            name, data, mode = entry if len(entry) == 3 else (*entry, stat.S_IFREG | 0o644)
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buffer.getvalue()


def zip_folder(folder: pathlib.Path) -> bytes:
    """A zip of every file under ``folder``, names relative to it."""
    entries = [
        (path.relative_to(folder).as_posix(), path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    return build_zip(entries)


@pytest.fixture
def make_zip():
    """`build_zip` as a fixture."""
    return build_zip


@pytest.fixture
def package_fixture():
    """The zip of ``fixtures/packages/<name>/``."""
    return lambda name: zip_folder(FIXTURES / "packages" / name)


def tree(root: pathlib.Path) -> list[str]:
    """Every path under ``root``, relative and sorted: to compare before and after."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def snapshot():
    """`tree` as a fixture."""
    return tree
