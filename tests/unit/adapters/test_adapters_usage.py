"""The dispatch check: every placeholder of a package against the parameter names."""

import pytest

from adapters.adapter import parse_adapter
from adapters.bundled import package_zip, project_files
from adapters.errors import SubstitutionError
from adapters.package import inspect_package, package_inventory
from adapters.params import parse_params
from adapters.usage import (
    MAX_LISTED,
    Use,
    adapter_uses,
    inventory,
    known_names,
    problems,
    refusal,
    template_paths,
    template_uses,
)


def _states(data):
    return [s.params for s in parse_params(data)]


@pytest.fixture
def typos(package_fixture, fixture_bytes):
    data = package_fixture("typos")
    adapter = inspect_package(data)
    return package_inventory(data, adapter), _states(fixture_bytes("params/typos.xml"))


def test_adapter_uses_name_every_attribute_the_agent_substitutes(package_fixture):
    adapter = inspect_package(package_fixture("typos"))
    found = {(u.name, u.line, u.what) for u in adapter_uses(adapter)}
    assert found == {
        ("model", 3, "attribute name of <File>"),
        ("model", 3, "attribute target of <File>"),
        ("case", 8, "attribute source of <ParaFile>"),
        ("case", 8, "attribute target of <ParaFile>"),
        ("n", 12, "the value of step 'solve'"),
        ("m", 12, "the value of step 'solve'"),
        ("case", 12, "the workpath of step 'solve'"),
        ("nxx", 13, "the value of step 'post'"),
        ("n", 13, "the value of step 'post'"),
        ("case", 16, "the path of <Progress>"),
        ("outdir", 19, "the path of Data 'out'"),
    }


def test_template_uses_give_each_name_its_first_line():
    text = "a = {a}\n{{literal}}\nb = {b} {a}\n"
    assert template_uses(text, "in.tpl") == (Use("a", "in.tpl", 1), Use("b", "in.tpl", 3))


def test_malformed_template_braces_raise_with_file_and_line():
    with pytest.raises(SubstitutionError, match=r"^in\.tpl:2: unmatched '\{' at column 5"):
        template_uses("ok\nbad {x\n", "in.tpl")


def test_only_templates_a_parafile_may_read_are_taken(package_fixture):
    adapter = inspect_package(package_fixture("typos"))
    members = ["IN/in.txt", "IN/a.tpl", "IN/b.tpl", "IN/c.txt", "other.tpl"]
    assert template_paths(adapter, members) == ["IN/in.txt", "IN/a.tpl", "IN/b.tpl"]


def test_package_inventory_reads_those_templates(typos):
    inv, _ = typos
    assert sorted(inv.templates) == ["IN/a.tpl", "IN/b.tpl", "IN/in.txt"]
    assert inv.templates["IN/in.txt"] == (
        Use("n", "IN/in.txt", 1),
        Use("m", "IN/in.txt", 2),
        Use("foo", "IN/in.txt", 3),
    )


def test_problems_name_file_line_and_placeholder(typos):
    inv, states = typos
    assert problems(inv, states) == [
        "adapter.xml:13: unknown parameter {nxx} in the value of step 'post'",
        "adapter.xml:19: unknown parameter {outdir} in the path of Data 'out'",
        "IN/in.txt:3: unknown parameter {foo}",
        "IN/b.tpl:1: unknown parameter {beta}",
    ]


def test_a_template_is_checked_only_for_the_sources_the_states_name(typos, fixture_bytes):
    inv, _ = typos
    only_a = _states(fixture_bytes("params/typos.xml").replace(b"a;b", b"a;a"))
    assert "IN/b.tpl:1: unknown parameter {beta}" not in problems(inv, only_a)


def test_a_close_name_is_suggested():
    assert Use("mahc", "adapter.xml", 4, "the value of step 's'").problem(["mach", "alpha"]) == (
        "adapter.xml:4: unknown parameter {mahc} in the value of step 's' (did you mean {mach}?)"
    )


def test_an_unknown_source_placeholder_is_reported_and_its_templates_skipped(typos, fixture_bytes):
    inv, _ = typos
    states = _states(fixture_bytes("params/typos.xml").replace(b'name="case"', b'name="kase"'))
    found = problems(inv, states)
    assert (
        "adapter.xml:8: unknown parameter {case} in attribute source of <ParaFile> "
        "(did you mean {kase}?)"
    ) in found
    assert not any(p.startswith("IN/a.tpl") or p.startswith("IN/b.tpl") for p in found)


def test_a_malformed_template_is_a_problem_too():
    adapter = parse_adapter(
        b'<Adapter name="t"><ParaFiles><ParaFile source="in.tpl"/></ParaFiles>'
        b'<Steps><ExeArgument id="s" value="true" priority="1"/></Steps></Adapter>'
    )
    inv = inventory(adapter, {"in.tpl": "x = {x}\ny = {y\n"})
    assert problems(inv, [{"x": 1}]) == [
        "in.tpl:2: unmatched '{' at column 5; a placeholder is {name} with name an "
        "identifier; write literal braces as {{ and }}"
    ]


def test_known_names_are_those_every_state_has():
    assert known_names([{"a": 1, "b": 2}, {"a": 3}]) == {"a"}
    assert known_names([]) == set()


def test_refusal_lists_a_bounded_number_of_problems_and_the_defined_names():
    found = [f"p{i}" for i in range(MAX_LISTED + 3)]
    text = refusal(found, "para.xml", {"b", "a"})
    assert text.startswith(
        "the package's placeholders do not all match para.xml, so no job was created: p0; p1;"
    )
    assert f"p{MAX_LISTED - 1}; and 3 more (para.xml defines: a, b)" in text
    assert f"p{MAX_LISTED};" not in text


@pytest.mark.parametrize("name", ["demo", "trivial"])
def test_bundled_packages_match_their_projects(name):
    data = package_zip(name)
    inv = package_inventory(data, inspect_package(data))
    assert problems(inv, _states(project_files(name)["para.xml"])) == []


def test_the_script_package_needs_only_what_a_submission_gives():
    data = package_zip("script")
    inv = package_inventory(data, inspect_package(data))
    assert problems(inv, [{"SCRIPT": "echo hi", "NCPUS": 1}]) == []
    assert problems(inv, [{"NCPUS": 1}]) == ["job.sh.tpl:1: unknown parameter {SCRIPT}"]
