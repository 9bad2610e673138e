"""extract_zip: zip slip in every form, zip bombs, and nothing half done."""

import io
import os
import stat
import struct
import time
import zipfile

import pytest

from adapters import safezip
from adapters.errors import AdapterError, UnsafeZipError
from adapters.safezip import extract_zip

LINK = stat.S_IFLNK | 0o777


@pytest.fixture
def target(tmp_path):
    """A target that already holds a file: refusals must leave it as it was."""
    path = tmp_path / "target"
    path.mkdir()
    (path / "keep.txt").write_text("before")
    return path


def refused(source, target, snapshot, **kw) -> str:
    before = snapshot(target)
    with pytest.raises(UnsafeZipError) as info:
        extract_zip(source, target, name="pkg.zip", **kw)
    assert snapshot(target) == before  # nothing extracted, no staging left
    assert (target / "keep.txt").read_text() == "before"
    assert isinstance(info.value, AdapterError)
    return str(info.value)


def test_extracts_files_and_directories(make_zip, target):
    data = make_zip(
        [
            ("a/", b"", stat.S_IFDIR | 0o755),
            ("a/one.txt", b"1"),
            ("a/b/two.txt", b"2"),
            ("run.sh", b"#!/bin/sh\n", stat.S_IFREG | 0o755),
            ("empty/", b"", stat.S_IFDIR | 0o755),
        ]
    )
    names = extract_zip(data, target)
    assert names == ["a/one.txt", "a/b/two.txt", "run.sh"]
    assert (target / "a/b/two.txt").read_bytes() == b"2"
    assert (target / "empty").is_dir()
    assert os.stat(target / "run.sh").st_mode & 0o111
    assert not os.stat(target / "a/one.txt").st_mode & 0o111
    assert (target / "keep.txt").read_text() == "before"
    assert not [p for p in target.iterdir() if p.name.startswith(".unzip-")]


def test_source_may_be_a_path_or_a_file_object(make_zip, tmp_path):
    data = make_zip([("x.txt", b"x")])
    (tmp_path / "p.zip").write_bytes(data)
    assert extract_zip(tmp_path / "p.zip", tmp_path / "t1") == ["x.txt"]
    assert extract_zip(str(tmp_path / "p.zip"), tmp_path / "t2") == ["x.txt"]
    assert extract_zip(io.BytesIO(data), tmp_path / "t3") == ["x.txt"]
    assert (tmp_path / "t3" / "x.txt").read_bytes() == b"x"


def test_overwrites_existing_files(make_zip, target):
    extract_zip(make_zip([("keep.txt", b"after")]), target)
    assert (target / "keep.txt").read_text() == "after"


def test_members_prefix_extracts_only_that_folder(make_zip, tmp_path):
    data = make_zip(
        [
            ("adapter.xml", b"<Adapter/>"),
            ("hooks.py", b""),
            ("template/", b"", stat.S_IFDIR | 0o755),
            ("template/GRID/grid.py", b"g"),
            ("template/FLOW/flow.py", b"f"),
            ("templates/other.txt", b"no"),
        ]
    )
    names = extract_zip(data, tmp_path / "job", members_prefix="template/")
    assert names == ["GRID/grid.py", "FLOW/flow.py"]
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == ["FLOW", "GRID"]
    # Without the trailing slash the prefix still means the folder.
    assert extract_zip(data, tmp_path / "job2", members_prefix="template") == names


def test_names_are_normalised_before_the_prefix(make_zip, tmp_path):
    data = make_zip([("./template/a.txt", b"a"), ("template//b/./c.txt", b"c")])
    assert extract_zip(data, tmp_path / "t", members_prefix="./template") == ["a.txt", "b/c.txt"]
    assert (tmp_path / "t/b/c.txt").read_bytes() == b"c"


def test_repeated_name_extracts_the_last(make_zip, tmp_path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = make_zip([("x.txt", b"first"), ("x.txt", b"second")])
    assert extract_zip(data, tmp_path / "t") == ["x.txt"]
    assert (tmp_path / "t" / "x.txt").read_bytes() == b"second"


# --- zip slip -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, problem",
    [
        ("../evil.txt", "contains '..'"),
        ("a/../../evil.txt", "contains '..'"),
        ("a/b/..", "contains '..'"),
        ("/etc/evil.txt", "has an absolute path"),
        ("C:/evil.txt", "has an absolute path"),
        ("..\\evil.txt", "contains a backslash"),
        ("a\\..\\..\\evil.txt", "contains a backslash"),
    ],
)
def test_zip_slip_names(make_zip, target, snapshot, name, problem):
    data = make_zip([("good.txt", b"ok"), (name, b"evil")])
    message = refused(data, target, snapshot)
    assert message == f"pkg.zip: entry {name!r} {problem}"
    assert not (target.parent / "evil.txt").exists()


def test_symlink_entry_is_refused(make_zip, target, snapshot):
    data = make_zip([("good.txt", b"ok"), ("link", b"/etc/passwd", LINK)])
    assert refused(data, target, snapshot) == "pkg.zip: entry 'link' is a symbolic link"


def test_symlink_then_write_through_it_is_refused(make_zip, target, snapshot):
    # The classic two-step: a link to outside, then a file "inside" the link.
    data = make_zip([("out", b"..", LINK), ("out/evil.txt", b"evil")])
    assert refused(data, target, snapshot) == "pkg.zip: entry 'out' is a symbolic link"


def test_special_files_are_refused(make_zip, target, snapshot):
    data = make_zip([("fifo", b"", stat.S_IFIFO | 0o644)])
    assert refused(data, target, snapshot) == (
        "pkg.zip: entry 'fifo' is not a regular file or directory"
    )


def test_link_already_in_the_target_is_no_way_out(make_zip, target, snapshot, tmp_path):
    (tmp_path / "outside").mkdir()
    (target / "out").symlink_to(tmp_path / "outside")
    data = make_zip([("out/evil.txt", b"evil")])
    assert refused(data, target, snapshot) == (
        "pkg.zip: entry 'out/evil.txt' lands outside the target directory"
    )
    assert not (tmp_path / "outside" / "evil.txt").exists()


def test_file_over_a_directory_is_refused(make_zip, target, snapshot):
    (target / "dir").mkdir()
    data = make_zip([("dir", b"x")])
    assert refused(data, target, snapshot) == "pkg.zip: entry 'dir' would replace a directory"


def test_directory_over_a_file_is_refused(make_zip, target, snapshot):
    data = make_zip([("keep.txt/", b"", stat.S_IFDIR | 0o755)])
    assert refused(data, target, snapshot) == "pkg.zip: entry 'keep.txt/' would replace a file"


def test_refused_archive_leaves_no_new_directory(make_zip, tmp_path):
    with pytest.raises(UnsafeZipError):
        extract_zip(make_zip([("../x", b"x")]), tmp_path / "new" / "dir")
    assert not (tmp_path / "new").exists()


def test_file_as_a_directory_is_refused(make_zip, target, snapshot):
    data = make_zip([("keep.txt/inner", b"x")])
    assert refused(data, target, snapshot) == (
        "pkg.zip: entry 'keep.txt/inner' would need a directory where a file is"
    )


def test_conflict_inside_the_archive_is_refused(make_zip, target, snapshot):
    data = make_zip([("a", b"file"), ("a/b", b"under a file")])
    assert refused(data, target, snapshot).startswith("pkg.zip: entry 'a/b' cannot be extracted")


def test_encrypted_entry_is_refused(make_zip, target, snapshot):
    data = bytearray(make_zip([("secret.txt", b"x")]))
    # Set the "encrypted" flag bit in the central directory record.
    at = data.rfind(b"PK\x01\x02")
    flags = struct.unpack_from("<H", data, at + 8)[0]
    struct.pack_into("<H", data, at + 8, flags | 1)
    assert refused(bytes(data), target, snapshot) == "pkg.zip: entry 'secret.txt' is encrypted"


def test_not_a_zip(target, snapshot):
    assert refused(b"not a zip at all", target, snapshot) == (
        "pkg.zip: not a readable zip archive: File is not a zip file"
    )


# --- zip bombs ----------------------------------------------------------------------------


def test_high_ratio_is_refused_while_extracting(make_zip, target, snapshot):
    data = make_zip([("small.txt", b"fine"), ("bomb.bin", b"\0" * (20 * 1024 * 1024))])
    assert len(data) < 100_000
    start = time.perf_counter()
    message = refused(data, target, snapshot)
    assert message == "pkg.zip: entry 'bomb.bin' expands more than 200 times (a zip bomb?)"
    assert time.perf_counter() - start < 2


def test_small_files_may_compress_well(make_zip, tmp_path):
    # The ratio only counts past 1 MiB: a page of zeros is not a bomb.
    assert extract_zip(make_zip([("zeros", b"\0" * 100_000)]), tmp_path / "t") == ["zeros"]


def test_too_many_entries(make_zip, target, snapshot):
    data = make_zip([(f"f{i}.txt", b"x") for i in range(11)])
    assert refused(data, target, snapshot, max_entries=10) == (
        "pkg.zip: entry 'f10.txt': archive has 11 entries, more than the limit of 10"
    )


def test_default_entry_cap(make_zip, target, snapshot):
    data = make_zip([(f"{i}", b"") for i in range(10_001)])
    assert "archive has 10001 entries, more than the limit of 10000" in refused(
        data, target, snapshot
    )


def test_total_size_declared(make_zip, target, snapshot):
    data = make_zip([("a.bin", os.urandom(600)), ("b.bin", os.urandom(600))])
    assert refused(data, target, snapshot, max_total=1000) == (
        "pkg.zip: entry 'b.bin': archive declares more than 1000 bytes"
    )


def test_total_size_counted_while_extracting(make_zip, target, snapshot, monkeypatch):
    # Headers may lie: with the declared-size check out of the way, the bytes
    # actually decompressed still stop the extraction.
    real = safezip.check_archive
    monkeypatch.setattr(
        safezip, "check_archive", lambda zf, archive, max_entries, max_total: real(zf, archive)
    )
    data = make_zip([("a.bin", os.urandom(600)), ("b.bin", os.urandom(600))])
    assert refused(data, target, snapshot, max_total=1000) == (
        "pkg.zip: entry 'b.bin': archive expands past the limit of 1000 bytes"
    )


def test_lying_size_header_is_not_trusted(make_zip, target, snapshot):
    data = bytearray(make_zip([("big.bin", b"A" * 50_000)]))
    at = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, at + 24, 10)  # central directory: "10 bytes, honest"
    message = refused(bytes(data), target, snapshot)
    assert message.startswith("pkg.zip: entry 'big.bin' cannot be extracted")


def test_partial_extraction_is_undone(make_zip, target, snapshot):
    # Good entries first, then a bomb: none of the good ones may stay behind.
    entries = [(f"good{i}.txt", b"ok") for i in range(5)]
    entries.append(("bomb.bin", b"\0" * (5 * 1024 * 1024)))
    refused(make_zip(entries), target, snapshot)
    assert not (target / "good0.txt").exists()


def test_stored_entries_extract(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("plain.txt", "stored")
    assert extract_zip(buffer.getvalue(), tmp_path / "t") == ["plain.txt"]
