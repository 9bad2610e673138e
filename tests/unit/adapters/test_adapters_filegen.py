"""File generation helpers and the Progress file reader."""

import pytest

from adapters.adapter import DataItem, FileRule, ParaFileRule, Step, parse_adapter
from adapters.errors import AdapterError, PathEscapeError, SubstitutionError, UnsafeZipError
from adapters.filegen import (
    apply_file_rule,
    apply_parafile_rule,
    data_path,
    generate_files,
    step_workdir,
)
from adapters.progress import parse_progress, read_progress


@pytest.fixture
def dirs(tmp_path):
    job, project = tmp_path / "job", tmp_path / "project"
    job.mkdir()
    project.mkdir()
    (project / "wing.dat").write_text("0 0\n1 0\n")
    return job, project


def test_file_rule_copies_with_create(dirs):
    job, project = dirs
    rule = FileRule("{model}", "GRID/{model}", create=True, unzip=False, line=4)
    target = apply_file_rule(rule, {"model": "wing.dat"}, job, project, "adapter.xml")
    assert target == (job / "GRID" / "wing.dat").resolve()
    assert target.read_text() == "0 0\n1 0\n"


def test_file_rule_without_create_needs_the_directory(dirs):
    job, project = dirs
    rule = FileRule("wing.dat", "GRID/wing.dat", create=False, unzip=False, line=4)
    with pytest.raises(AdapterError) as info:
        apply_file_rule(rule, {}, job, project, "adapter.xml")
    assert str(info.value) == (
        "adapter.xml:4: directory 'GRID' does not exist (create=\"1\" creates it)"
    )
    (job / "GRID").mkdir()
    assert apply_file_rule(rule, {}, job, project, "adapter.xml").is_file()


def test_file_rule_into_an_existing_directory(dirs):
    job, project = dirs
    (job / "GRID").mkdir()
    rule = FileRule("wing.dat", "GRID", create=False, unzip=False, line=4)
    assert apply_file_rule(rule, {}, job, project, "a.xml") == (job / "GRID/wing.dat").resolve()


def test_file_rule_missing_project_file(dirs):
    job, project = dirs
    rule = FileRule("{model}", "x", create=True, unzip=False, line=4)
    with pytest.raises(AdapterError) as info:
        apply_file_rule(rule, {"model": "nope.dat"}, job, project, "adapter.xml")
    assert str(info.value) == "adapter.xml:4: project file 'nope.dat' does not exist"


def test_file_rule_values_cannot_escape(dirs):
    job, project = dirs
    rule = FileRule("{model}", "GRID/{model}", create=True, unzip=False, line=4)
    with pytest.raises(PathEscapeError) as info:
        apply_file_rule(rule, {"model": "../../etc/passwd"}, job, project, "adapter.xml")
    assert str(info.value) == (
        "adapter.xml:4: attribute name '../../etc/passwd' escapes the project directory"
    )
    rule = FileRule("wing.dat", "{where}/x", create=True, unzip=False, line=5)
    with pytest.raises(PathEscapeError) as info:
        apply_file_rule(rule, {"where": "../.."}, job, project, "adapter.xml")
    assert str(info.value) == "adapter.xml:5: attribute target '../../x' escapes the job directory"


def test_file_rule_unknown_parameter(dirs):
    job, project = dirs
    rule = FileRule("{model}", "x", create=True, unzip=False, line=4)
    with pytest.raises(SubstitutionError) as info:
        apply_file_rule(rule, {}, job, project, "adapter.xml")
    assert str(info.value) == "adapter.xml:4: unknown parameter 'model' in attribute name"


def test_file_rule_unzip(dirs, make_zip):
    job, project = dirs
    (project / "mesh.zip").write_bytes(make_zip([("a/m.dat", b"m")]))
    rule = FileRule("mesh.zip", "MESH", create=True, unzip=True, line=4)
    assert apply_file_rule(rule, {}, job, project, "adapter.xml") == (job / "MESH").resolve()
    assert (job / "MESH/a/m.dat").read_bytes() == b"m"
    (project / "evil.zip").write_bytes(make_zip([("../evil", b"m")]))
    with pytest.raises(UnsafeZipError, match="evil.zip: entry '../evil' contains '..'"):
        apply_file_rule(FileRule("evil.zip", "E", True, True, 5), {}, job, project, "adapter.xml")


def test_parafile_rule_renders(dirs):
    job, _ = dirs
    (job / "FLOW").mkdir()
    (job / "FLOW/flow.in.tpl").write_text("mach = {mach}\n")
    rule = ParaFileRule("FLOW/flow.in.tpl", "FLOW/flow.in", line=7)
    target = apply_parafile_rule(rule, {"mach": 0.5}, job, "adapter.xml")
    assert target.read_text() == "mach = 0.5\n"
    assert (job / "FLOW/flow.in.tpl").read_text() == "mach = {mach}\n"


def test_parafile_rule_in_place_keeps_non_utf8_bytes(dirs):
    job, _ = dirs
    (job / "cfg").write_bytes(b"\xff\xfe n={n}\n")
    apply_parafile_rule(ParaFileRule("cfg", None, line=7), {"n": 3}, job, "adapter.xml")
    assert (job / "cfg").read_bytes() == b"\xff\xfe n=3\n"


def test_parafile_errors(dirs):
    job, _ = dirs
    with pytest.raises(
        AdapterError, match=r"^adapter.xml:7: ParaFile source 'no.tpl' cannot be read"
    ):
        apply_parafile_rule(ParaFileRule("no.tpl", None, 7), {}, job, "adapter.xml")
    (job / "t.tpl").write_text("a\n{b}\n")
    with pytest.raises(SubstitutionError) as info:
        apply_parafile_rule(ParaFileRule("t.tpl", "t", 7), {}, job, "adapter.xml")
    assert str(info.value) == "t.tpl:2: unknown parameter 'b'"


def test_generate_files_and_workdirs(dirs, fixture_bytes):
    job, project = dirs
    adapter = parse_adapter(
        b'<Adapter name="t"><Files><File name="{model}" target="GRID/{model}" create="1"/></Files>'
        b'<ParaFiles><ParaFile source="in.tpl" target="RUN/in"/></ParaFiles>'
        b'<Steps><ExeArgument id="s" value="true" workpath="RUN/{case}" priority="1"/></Steps>'
        b'<Result><Data key="out" path="RUN/{case}/out.dat"/></Result></Adapter>'
    )
    (job / "in.tpl").write_text("case={case}")
    params = {"model": "wing.dat", "case": "c1"}
    written = generate_files(adapter, params, job, project)
    assert [p.relative_to(job.resolve()).as_posix() for p in written] == ["GRID/wing.dat", "RUN/in"]
    workdir = step_workdir(adapter.steps[0], params, job)
    assert workdir.is_dir() and workdir == (job / "RUN/c1").resolve()
    assert data_path(adapter.result[0], params, job) == (job / "RUN/c1/out.dat").resolve()
    with pytest.raises(PathEscapeError, match="attribute workpath of step 's'"):
        step_workdir(Step("s", "shell", "true", "{w}", 1, None, None, 3), {"w": ".."}, job)
    with pytest.raises(PathEscapeError, match="attribute path of Data 'k'"):
        data_path(DataItem("k", "{w}/x", 3), {"w": "/etc"}, job)


@pytest.mark.parametrize(
    "text, progress",
    [
        ("1 10\n2 10\n", (2, 10)),
        ("1 10\n2 10\n\n  \n", (2, 10)),
        ("  7   9  ", (7, 9)),
        ("1 10\nbroken\n", None),
        ("1 2 3\n", None),
        ("", None),
    ],
)
def test_parse_progress(text, progress):
    assert parse_progress(text) == progress


def test_read_progress(tmp_path):
    path = tmp_path / "progress.txt"
    assert read_progress(path) is None
    path.write_text("".join(f"{i} 100000\n" for i in range(1, 100_001)))
    assert read_progress(path) == (100_000, 100_000)


# --- links a step leaves behind ---------------------------------------------------------------


@pytest.fixture
def outside(tmp_path):
    out = tmp_path / "outside"
    out.mkdir()
    return out


def test_file_rule_into_a_directory_does_not_follow_a_link_left_there(dirs, outside):
    job, project = dirs
    (job / "GRID").mkdir()
    (job / "GRID" / "wing.dat").symlink_to(outside / "planted")
    rule = FileRule("wing.dat", "GRID", create=False, unzip=False, line=4)
    with pytest.raises(PathEscapeError) as info:
        apply_file_rule(rule, {}, job, project, "adapter.xml")
    assert str(info.value) == (
        "adapter.xml:4: attribute target 'GRID/wing.dat' escapes the job directory "
        f"through the symbolic link 'GRID/wing.dat' -> {str(outside / 'planted')!r}"
    )
    assert not (outside / "planted").exists()


def test_file_rule_target_directory_linked_out(dirs, outside):
    job, project = dirs
    (job / "GRID").symlink_to(outside)
    rule = FileRule("wing.dat", "GRID/wing.dat", create=True, unzip=False, line=4)
    with pytest.raises(PathEscapeError, match="through the symbolic link 'GRID' -> "):
        apply_file_rule(rule, {}, job, project, "adapter.xml")
    assert list(outside.iterdir()) == []


def test_file_rule_link_inside_the_job_directory_is_followed(dirs):
    job, project = dirs
    (job / "real").mkdir()
    (job / "GRID").symlink_to(job / "real")
    rule = FileRule("wing.dat", "GRID", create=False, unzip=False, line=4)
    target = apply_file_rule(rule, {}, job, project, "adapter.xml")
    assert target == (job / "real" / "wing.dat").resolve()
    assert target.read_text() == "0 0\n1 0\n"


def test_parafile_does_not_read_or_write_through_a_link_out(dirs, outside):
    job, _ = dirs
    (outside / "secret.tpl").write_text("secret {x}\n")
    (job / "in.tpl").symlink_to(outside / "secret.tpl")
    rule = ParaFileRule("in.tpl", "out.txt", line=6)
    with pytest.raises(PathEscapeError, match="attribute source 'in.tpl' escapes the job"):
        apply_parafile_rule(rule, {"x": 1}, job, "adapter.xml")
    (job / "tpl").write_text("v={x}\n")
    (job / "out.txt").symlink_to(outside / "written")
    rule = ParaFileRule("tpl", "out.txt", line=7)
    with pytest.raises(PathEscapeError, match="through the symbolic link 'out.txt' -> "):
        apply_parafile_rule(rule, {"x": 1}, job, "adapter.xml")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.tpl"]


def test_data_path_does_not_follow_a_link_out(dirs, outside):
    job, _ = dirs
    (outside / "secret").write_text("s")
    (job / "RESULT").symlink_to(outside)
    item = DataItem("res", "RESULT/secret", line=9)
    with pytest.raises(PathEscapeError) as info:
        data_path(item, {}, job, "adapter.xml")
    assert str(info.value) == (
        "adapter.xml:9: attribute path of Data 'res' 'RESULT/secret' escapes the job directory "
        f"through the symbolic link 'RESULT' -> {str(outside)!r}"
    )
