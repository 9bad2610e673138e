"""The agent's tree copy and package listing, on real directories."""

import os
import stat

import pytest

from services.agent.workspace import COMPLETE, Workspace, copy_tree, tree_of


def make_tree(root):
    (root / "template" / "sub").mkdir(parents=True)
    (root / "adapter.xml").write_text("<Adapter/>")
    (root / "template" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "template" / "run.sh").chmod(0o750)
    (root / "template" / "sub" / "big.bin").write_bytes(os.urandom(300_000))
    (root / "template" / "empty.txt").write_text("")
    return root


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_tree_of_lists_parents_first_with_modes_and_sizes(tmp_path):
    root = make_tree(tmp_path / "pkg")
    tree = {str(rel): (is_dir, m, size) for rel, is_dir, m, size in tree_of(root)}
    assert list(tree) == [
        "template",
        "adapter.xml",
        "template/sub",
        "template/empty.txt",
        "template/run.sh",
        "template/sub/big.bin",
    ]
    assert tree["template/run.sh"][1] == 0o750
    assert tree["template/sub/big.bin"][2] == 300_000


@pytest.mark.parametrize("listed", [True, False])
def test_copy_tree_copies_contents_and_modes(tmp_path, listed):
    root = make_tree(tmp_path / "pkg")
    target = tmp_path / "job" / ".mirror" / "calc"
    copy_tree(root, target, tree_of(root) if listed else None)
    for rel, is_dir, m, _ in tree_of(root):
        assert (target / rel).is_dir() == is_dir
        assert mode(target / rel) == m
        if not is_dir:
            assert (target / rel).read_bytes() == (root / rel).read_bytes()
    # Real copies: writing one leaves the source as it was.
    (target / "adapter.xml").write_text("changed")
    assert (root / "adapter.xml").read_text() == "<Adapter/>"


def test_copy_tree_refuses_a_symbolic_link(tmp_path):
    root = make_tree(tmp_path / "pkg")
    (root / "template" / "link").symlink_to("/etc/passwd")
    with pytest.raises(OSError, match="link is a symbolic link"):
        copy_tree(root, tmp_path / "out")


def test_package_tree_leaves_out_the_cache_marker_and_lists_the_template(tmp_path):
    work = Workspace(tmp_path / "work", files=None)
    package = {"c_id": 3, "sha256": "ab" * 32}
    cached = work.cache / "packages" / f"3-{'ab' * 8}"
    make_tree(cached)
    (cached / COMPLETE).touch()

    directory, tree, template = work.package_tree(package)

    assert directory == cached
    assert COMPLETE not in {str(rel) for rel, *_ in tree}
    assert [str(rel) for rel, *_ in template] == [
        "sub",
        "empty.txt",
        "run.sh",
        "sub/big.bin",
    ]
    assert work.package_tree(package)[1] is tree  # listed once
