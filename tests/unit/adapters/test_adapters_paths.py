"""check_relpath and confine: no path from an adapter or a parameter leaves its root."""

import os
import pathlib
import posixpath

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.errors import PathEscapeError
from adapters.paths import check_relpath, confine


@pytest.fixture(scope="module")
def jail(tmp_path_factory):
    """A root with a subdirectory, a link inside, links out, and a secret outside."""
    base = tmp_path_factory.mktemp("jail")
    root = base / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "file.txt").write_text("in")
    (base / "outside").mkdir()
    (base / "outside" / "secret").write_text("out")
    (root / "link_in").symlink_to(root / "a")
    (root / "link_out").symlink_to(base / "outside")
    (root / "a" / "up").symlink_to("../..")
    (root / "abs_out").symlink_to("/etc")
    (root / "loop").symlink_to(root / "loop")
    return root


@pytest.mark.parametrize(
    "rel, expected",
    [
        (".", ""),
        ("a", "a"),
        ("a/b/../b", "a/b"),
        ("a/./b//", "a/b"),
        ("new/dir/file", "new/dir/file"),
        ("link_in/file.txt", "a/file.txt"),
        ("a/..", ""),
    ],
)
def test_confine_inside(jail, rel, expected):
    assert confine(jail, rel, "target") == pathlib.Path(os.path.realpath(jail / expected))


@pytest.mark.parametrize(
    "rel, problem",
    [
        ("..", "escapes the job directory"),
        ("a/../../x", "escapes the job directory"),
        ("/etc/passwd", "is absolute; paths must be relative to the job directory"),
        ("\\x", "is absolute; paths must be relative to the job directory"),
        ("C:/x", "is absolute; paths must be relative to the job directory"),
        ("a\0b", "contains a NUL byte"),
        ("", "is empty"),
    ],
)
def test_confine_refuses(jail, rel, problem):
    with pytest.raises(PathEscapeError) as info:
        confine(jail, rel, "adapter.xml:4: attribute target")
    assert str(info.value) == f"adapter.xml:4: attribute target {rel!r} {problem}"


@pytest.mark.parametrize(
    "rel, link",
    [
        ("link_out/secret", "'link_out' -> {out!r}"),
        ("link_out", "'link_out' -> {out!r}"),
        ("a/up/outside/secret", "'a/up' -> '../..'"),
        ("abs_out/passwd", "'abs_out' -> '/etc'"),
    ],
)
def test_confine_names_the_link_out(jail, rel, link):
    out = str(jail.parent / "outside")
    with pytest.raises(PathEscapeError) as info:
        confine(jail, rel, "adapter.xml:4: attribute target")
    assert str(info.value) == (
        f"adapter.xml:4: attribute target {rel!r} escapes the job directory "
        f"through the symbolic link {link.format(out=out)}"
    )


def test_confine_message_without_location(jail):
    with pytest.raises(PathEscapeError) as info:
        confine(jail, "../x", "target")
    assert str(info.value) == "target '../x' escapes the job directory"


def test_confine_names_its_root(jail):
    with pytest.raises(PathEscapeError, match="escapes the project directory"):
        confine(jail, "../x", "file", root_name="the project directory")


def test_symlink_loop_does_not_hang(jail):
    try:
        result = confine(jail, "loop/x", "target")
    except PathEscapeError:
        return
    assert jail in result.parents


@pytest.mark.parametrize(
    "rel", ["a", "a/b", "{model}", "GRID/{model}", "a/../b", "./x", "a/b/../../c", "x..y", "..x"]
)
def test_check_relpath_accepts(rel):
    assert check_relpath(rel, "w") == rel


@pytest.mark.parametrize(
    "rel", ["..", "../x", "a/../..", "a\\..\\..", "/x", "\\x", "C:\\x", "c:x", "a\0", ""]
)
def test_check_relpath_refuses(rel):
    with pytest.raises(PathEscapeError):
        check_relpath(rel, "w")


# --- properties --------------------------------------------------------------------------

SEGMENTS = st.sampled_from(
    [
        "..",
        ".",
        "",
        "a",
        "b",
        "new",
        "link_in",
        "link_out",
        "up",
        "abs_out",
        "loop",
        "...",
        "..\\..",
    ]
)
HOSTILE = st.builds(
    lambda lead, parts: lead + "/".join(parts),
    st.sampled_from(["", "", "", "/", "./", "\\", "C:"]),
    st.lists(SEGMENTS, max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(rel=HOSTILE)
@example(rel="a/up/outside/secret")
@example(rel="link_in/../../outside")
@example(rel="loop/../link_out/secret")
@example(rel="loop/../link_in")
@example(rel="loop//..")
@example(rel="link_in/./../a//b")
def test_confine_result_is_always_inside(jail, rel):
    root = pathlib.Path(os.path.realpath(jail))
    try:
        result = confine(jail, rel, "target")
    except PathEscapeError as exc:
        assert repr(rel) in str(exc)
        real = pathlib.Path(os.path.realpath(jail / rel)) if rel and "\0" not in rel else None
        lexically_bad = not rel or rel.startswith(("/", "\\")) or rel[1:2] == ":"
        # A symlink loop leaves realpath's answer unresolved: a reason of its own.
        loopy = real is not None and pathlib.Path(os.path.realpath(real)) != real
        # Refused only for a reason: absolute, empty, a loop, or truly outside.
        assert lexically_bad or loopy or (real != root and root not in real.parents)
        return
    assert result == root or root in result.parents
    assert result == pathlib.Path(os.path.realpath(result))  # fully resolved


@settings(max_examples=200, deadline=None)
@given(rel=HOSTILE)
def test_check_relpath_agrees_with_normpath(rel):
    try:
        check_relpath(rel, "w")
    except PathEscapeError:
        ok = False
    else:
        ok = True
    norm = posixpath.normpath(rel.replace("\\", "/")) if rel else ""
    escapes = norm == ".." or norm.startswith("../") or norm.startswith("/")
    expected = bool(rel) and not escapes and not rel.startswith("\\") and rel[1:2] != ":"
    assert ok == expected, (rel, norm)


@settings(max_examples=200, deadline=None)
@given(rel=st.text(st.sampled_from(list("ab./\\\0:{}")), max_size=16))
def test_lexically_accepted_paths_stay_inside_a_plain_root(tmp_path_factory, rel):
    root = tmp_path_factory.getbasetemp() / "plain"
    root.mkdir(exist_ok=True)
    try:
        check_relpath(rel, "w")
    except PathEscapeError:
        return
    result = confine(root, rel, "w")  # must not raise: no links in a plain root
    real_root = pathlib.Path(os.path.realpath(root))
    assert result == real_root or real_root in result.parents
