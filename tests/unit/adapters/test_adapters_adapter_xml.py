"""parse_adapter: the adapter.xml of SPEC section 4, every rule and every error."""

import dataclasses

import pytest

from adapters.adapter import Adapter, DataItem, FileRule, ParaFileRule, Step, parse_adapter
from adapters.errors import AdapterError, PathEscapeError, SubstitutionError, UnsafeXMLError

BRACES = "a placeholder is {name} with name an identifier; write literal braces as {{ and }}"
QUOTED = "parameter values are shell-quoted for you, so write {model} as a bare word"
JOB = "paths must be relative to the job directory"

ERRORS = [
    ("root_not_adapter.xml", "2: root element is <Adaptor>, expected <Adapter>"),
    ("missing_name.xml", "2: <Adapter> is missing the required attribute 'name'"),
    ("empty_name.xml", "2: attribute name of <Adapter> is empty"),
    (
        "unknown_root_attribute.xml",
        "2: <Adapter> has an unknown attribute 'hook' (allowed: name, version, hooks)",
    ),
    (
        "unknown_element.xml",
        "6: unknown element <Stepz> in <Adapter> "
        "(expected <Files>, <ParaFiles>, <Steps>, <Process>, <Result>)",
    ),
    ("unknown_child_element.xml", "4: unknown element <Fil> in <Files> (expected <File>)"),
    ("duplicate_section.xml", "6: <Steps> appears twice (first at line 3)"),
    ("stray_text.xml", "3: unexpected text 'hello' in <Steps>"),
    ("no_steps.xml", "2: adapter has no steps: add <Steps> with at least one <ExeArgument>"),
    ("empty_steps.xml", "3: adapter has no steps: <Steps> needs at least one <ExeArgument>"),
    ("file_missing_name.xml", "4: <File> is missing the required attribute 'name'"),
    ("file_missing_target.xml", "4: <File> is missing the required attribute 'target'"),
    ("parafile_missing_source.xml", "4: <ParaFile> is missing the required attribute 'source'"),
    ("step_missing_id.xml", "4: <ExeArgument> is missing the required attribute 'id'"),
    ("step_missing_value.xml", "4: <ExeArgument> is missing the required attribute 'value'"),
    ("step_missing_priority.xml", "4: <ExeArgument> is missing the required attribute 'priority'"),
    (
        "step_unknown_attribute.xml",
        "4: <ExeArgument> has an unknown attribute 'premthod' "
        "(allowed: id, value, priority, type, workpath, premethod, postmethod)",
    ),
    ("duplicate_step_id.xml", "5: duplicate step id 'grid' (first at line 4)"),
    (
        "bad_step_id.xml",
        "4: step id 'my step' must be letters, digits, '_', '-' or '.', "
        "not starting with '-' or '.'",
    ),
    ("priority_not_int.xml", "4: priority 'first' of step 'grid' is not an integer"),
    ("priority_float.xml", "4: priority '1.5' of step 'grid' is not an integer"),
    ("bad_type.xml", "4: type 'bash' of step 'grid' must be 'shell' or 'exec'"),
    ("empty_value.xml", "4: value of step 'grid' is empty"),
    (
        "exec_unsplittable.xml",
        "4: value of step 'grid' cannot be split into arguments: No closing quotation",
    ),
    (
        "hook_not_identifier.xml",
        "4: premethod 'grid-pre' of step 'grid' is not a Python identifier",
    ),
    ("hook_dotted.xml", "4: premethod 'os.system' of step 'grid' is not a Python identifier"),
    ("hook_private.xml", "4: postmethod '_secret' of step 'grid' must not start with '_'"),
    (
        "hook_without_hooks.xml",
        "4: step 'grid' names premethod 'gridPre' but <Adapter> has no hooks attribute",
    ),
    ("hooks_not_py.xml", "2: hooks 'hooks.txt' must name a Python file ending in .py"),
    (
        "hooks_absolute.xml",
        "2: attribute hooks '/etc/hooks.py' is absolute; paths must be relative to the package",
    ),
    ("hooks_escape.xml", "2: attribute hooks '../other/hooks.py' escapes the package"),
    ("bad_create.xml", "4: attribute create of <File> must be 0 or 1, got 'yes'"),
    ("bad_unzip.xml", "4: attribute unzip of <File> must be 0 or 1, got '2'"),
    ("duplicate_process_key.xml", "8: duplicate Data key 'chart' in <Process> (first at line 7)"),
    ("duplicate_result_key.xml", "8: duplicate Data key 'mesh' in <Result> (first at line 7)"),
    ("reserved_process_key.xml", "7: Data key 'currentstep' is reserved in <Process>"),
    (
        "bad_data_key.xml",
        "7: Data key 'a/b' must be letters, digits, '_', '-' or '.', not starting with '-' or '.'",
    ),
    ("data_missing_path.xml", "7: <Data> is missing the required attribute 'path'"),
    ("progress_in_result.xml", "7: unknown element <Progress> in <Result> (expected <Data>)"),
    ("progress_twice.xml", "8: <Progress> appears twice in <Process> (first at line 7)"),
    ("target_absolute.xml", f"4: attribute target '/etc/passwd' is absolute; {JOB}"),
    ("target_dotdot.xml", "4: attribute target 'GRID/../../x' escapes the job directory"),
    (
        "target_backslash.xml",
        "4: attribute target 'GRID\\\\..\\\\..\\\\x' escapes the job directory",
    ),
    ("target_drive.xml", f"4: attribute target 'C:/x' is absolute; {JOB}"),
    ("empty_target.xml", "4: attribute target '' is empty"),
    ("file_name_escape.xml", "4: attribute name '../secret' escapes the project directory"),
    ("source_escape.xml", "4: attribute source '../../flow.in.tpl' escapes the job directory"),
    ("parafile_target_absolute.xml", f"4: attribute target '/tmp/a' is absolute; {JOB}"),
    ("workpath_escape.xml", "4: attribute workpath '../..' escapes the job directory"),
    ("progress_absolute.xml", f"7: attribute path '/var/log/p.txt' is absolute; {JOB}"),
    ("data_path_escape.xml", "7: attribute path '..' escapes the job directory"),
    ("placeholder_unclosed.xml", f"4: unmatched '{{' at column 6 in attribute target; {BRACES}"),
    (
        "placeholder_bad_name.xml",
        f"4: bad placeholder '{{my model}}' at column 6 in attribute target; {BRACES}",
    ),
    (
        "placeholder_lone_close.xml",
        f"4: bad placeholder '{{print $1}}' at column 6 in attribute value; {BRACES}",
    ),
    (
        "shell_single_quotes.xml",
        f"4: placeholder {{model}} stands inside single quotes in the value of step 'grid'; {QUOTED}",
    ),
    (
        "shell_double_quotes.xml",
        f"4: placeholder {{model}} stands inside double quotes in the value of step 'grid'; {QUOTED}",
    ),
    (
        "shell_comment.xml",
        f"4: placeholder {{model}} stands inside a # comment in the value of step 'grid'; {QUOTED}",
    ),
    ("doctype.xml", "2: DOCTYPE declarations (DTDs) and entities are not allowed"),
]


@pytest.mark.parametrize("name, expected", ERRORS, ids=[e[0] for e in ERRORS])
def test_error(fixture_bytes, name, expected):
    with pytest.raises(AdapterError) as info:
        parse_adapter(fixture_bytes(f"adapter/{name}"))
    assert str(info.value) == f"adapter.xml:{expected}"


def test_error_kinds(fixture_bytes):
    def kind(name):
        with pytest.raises(AdapterError) as info:
            parse_adapter(fixture_bytes(f"adapter/{name}"))
        return type(info.value)

    assert kind("target_dotdot.xml") is PathEscapeError
    assert kind("placeholder_unclosed.xml") is SubstitutionError
    assert kind("shell_double_quotes.xml") is SubstitutionError
    assert kind("doctype.xml") is UnsafeXMLError
    assert kind("malformed.xml") is UnsafeXMLError


def test_malformed_names_the_line(fixture_bytes):
    with pytest.raises(UnsafeXMLError) as info:
        parse_adapter(fixture_bytes("adapter/malformed.xml"))
    assert str(info.value).startswith("adapter.xml:5: malformed XML: Opening and ending tag")


def test_filename_is_used_in_messages(fixture_bytes):
    with pytest.raises(AdapterError) as info:
        parse_adapter(fixture_bytes("adapter/bad_type.xml"), "pkg/adapter.xml")
    assert str(info.value).startswith("pkg/adapter.xml:4: ")
    assert info.value.filename == "pkg/adapter.xml" and info.value.line == 4


def test_full_adapter(fixture_bytes):
    adapter = parse_adapter(fixture_bytes("adapter/ok_full.xml"))
    assert adapter.name == "full" and adapter.version == "2.1"
    assert adapter.hooks == "lib/hooks.py"
    assert adapter.files == (
        FileRule(name="{model}", target="GRID/{model}", create=True, unzip=False, line=5),
        FileRule(name="mesh.zip", target="MESH", create=False, unzip=True, line=6),
    )
    assert adapter.parafiles == (
        ParaFileRule(source="FLOW/flow.in.tpl", target="FLOW/flow.in", line=9),
        ParaFileRule(source="POST/post.cfg", target=None, line=10),
    )
    assert adapter.step_ids == ("grid", "flow", "post")
    grid = adapter.step("grid")
    assert grid == Step(
        id="grid",
        type="shell",
        value="python grid.py {model}",
        workpath="GRID",
        priority=1,
        premethod="gridPre",
        postmethod="gridPost",
        line=14,
    )
    flow = adapter.step("flow")
    assert flow.type == "shell"  # the default
    assert flow.value == "python flow.py && awk '{{print $1}}' residual.dat"
    assert adapter.step("post").type == "exec"
    assert adapter.progress == "FLOW/progress.txt"
    assert adapter.process == (DataItem("chart", "FLOW/residual.dat", 19),)
    assert adapter.result == (
        DataItem("mesh", "GRID/mesh.dat", 22),
        DataItem("force", "POST/force.dat", 23),
    )
    assert adapter.hook_names == ("gridPre", "gridPost", "flowPost")


def test_minimal_adapter_defaults(fixture_bytes):
    adapter = parse_adapter(fixture_bytes("adapter/ok_minimal.xml"))
    assert adapter == Adapter(
        name="t",
        version="",
        hooks=None,
        files=(),
        parafiles=(),
        steps=(Step("run", "shell", "true", ".", 1, None, None, 4),),
        progress=None,
        process=(),
        result=(),
    )


def test_steps_sorted_by_priority_ties_in_document_order(fixture_bytes):
    adapter = parse_adapter(fixture_bytes("adapter/ok_priority_ties.xml"))
    assert adapter.step_ids == ("z", "a1", "a2", "b1", "b2")
    assert [s.priority for s in adapter.steps] == [-5, 1, 1, 2, 2]


def test_unknown_step_is_a_key_error(fixture_bytes):
    adapter = parse_adapter(fixture_bytes("adapter/ok_minimal.xml"))
    with pytest.raises(KeyError):
        adapter.step("nope")


def test_adapter_is_frozen(fixture_bytes):
    adapter = parse_adapter(fixture_bytes("adapter/ok_minimal.xml"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        adapter.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        adapter.steps[0].value = "rm -rf /"


def test_placeholders_in_paths_are_checked_only_literally():
    # "{model}" may become anything: confine() checks the substituted path later.
    data = (
        b'<Adapter name="t"><Files><File name="{a}/{b}" target="{dir}/x/../{a}"/></Files>'
        b'<Steps><ExeArgument id="s" value="true" workpath="{w}" priority="1"/></Steps></Adapter>'
    )
    adapter = parse_adapter(data)
    assert adapter.files[0].target == "{dir}/x/../{a}"
    assert adapter.steps[0].workpath == "{w}"


def test_exec_value_placeholders_checked_per_argument():
    data = (
        b'<Adapter name="t"><Steps><ExeArgument id="s" type="exec" value="echo \'{bad\'" '
        b'priority="1"/></Steps></Adapter>'
    )
    with pytest.raises(SubstitutionError, match="unmatched '{' at column 1 in attribute value"):
        parse_adapter(data)


def test_shell_placeholders_as_bare_words_are_fine():
    data = (
        b'<Adapter name="t"><Steps><ExeArgument id="s" value="cp {src} out/{dst}.dat &amp;&amp; '
        b'echo x=$(cat in) {src} | tee log # done" priority="1"/></Steps></Adapter>'
    )
    assert parse_adapter(data).steps[0].value.startswith("cp {src} out/{dst}.dat && echo")
