"""Check before running: placeholders naming no parameter refuse a dispatch before any job exists."""

import pytest

from tests.integration.conftest import make_package
from tests.integration.test_cli import mirror

TYPO_ADAPTER = """<Adapter name="typo">
  <ParaFiles>
    <ParaFile source="in.txt.tpl" target="in.txt"/>
  </ParaFiles>
  <Steps>
    <ExeArgument id="solve" type="shell" value="cat in.txt" priority="1"/>
    <ExeArgument id="post" type="shell" value="echo {nxx}" priority="2"/>
  </Steps>
</Adapter>"""
TYPO_TEMPLATE = "n = {n}\nmode = {mode}\nfoo = {foo}\n"

# The template comes from the project at run time: dispatch cannot read it.
LATE_ADAPTER = """<Adapter name="late">
  <Files>
    <File name="late.tpl" target="late.tpl"/>
  </Files>
  <ParaFiles>
    <ParaFile source="late.tpl" target="late.txt"/>
  </ParaFiles>
  <Steps>
    <ExeArgument id="run" type="shell" value="cat late.txt" priority="1"/>
  </Steps>
</Adapter>"""

PARA = """<Para>
  <Param name="n" type="int" multistate="1">1;2;3</Param>
  <Param name="mode">fast</Param>
</Para>"""

REFUSED = (
    "the package's placeholders do not all match para.xml, so no job was created: "
    "adapter.xml:7: unknown parameter {nxx} in the value of step 'post'; "
    "in.txt.tpl:3: unknown parameter {foo} (para.xml defines: NCPUS, mode, n)"
)


@pytest.fixture(scope="module")
def typo_c_id(autorun_mesh):
    package = make_package(TYPO_ADAPTER, {"template/in.txt.tpl": TYPO_TEMPLATE})
    return autorun_mesh.add_package("typo", package)


def test_dispatch_refuses_unknown_placeholders_with_file_and_line(autorun_mesh, typo_c_id):
    p_id = autorun_mesh.add_project("typo", {"para.xml": PARA.encode()})
    before = len(autorun_mesh.ok("job", "list", limit=10000))
    code, message = autorun_mesh.rpc("jobdispatch", "do", p_id=p_id, c_id=typo_c_id)
    assert [code, message] == [-1, REFUSED]
    assert autorun_mesh.ok("job", "list", p_id=p_id) == []
    assert len(autorun_mesh.ok("job", "list", limit=10000)) == before


def test_check_answers_the_same_problems_and_creates_nothing(autorun_mesh, typo_c_id):
    p_id = autorun_mesh.add_project("typo-check", {"para.xml": PARA.encode()})
    found = autorun_mesh.ok("jobdispatch", "check", p_id=p_id, c_id=typo_c_id)
    assert found == {
        "states": 3,
        "parameters": ["NCPUS", "mode", "n"],
        "problems": [
            "adapter.xml:7: unknown parameter {nxx} in the value of step 'post'",
            "in.txt.tpl:3: unknown parameter {foo}",
        ],
    }
    assert autorun_mesh.ok("job", "list", p_id=p_id) == []


def test_the_fixed_parameter_file_dispatches(autorun_mesh, typo_c_id):
    para = PARA.replace("</Para>", '<Param name="nxx">x</Param><Param name="foo">1</Param></Para>')
    p_id = autorun_mesh.add_project("typo-fixed", {"para.xml": para.encode()})
    assert autorun_mesh.ok("jobdispatch", "check", p_id=p_id, c_id=typo_c_id)["problems"] == []
    ids = autorun_mesh.ok("jobdispatch", "do", p_id=p_id, c_id=typo_c_id)
    for job_id in ids:
        assert autorun_mesh.wait_state(job_id, ("COMPLETED", "FAILED"))["state"] == "COMPLETED"


def test_a_late_template_mistake_is_recorded_as_a_user_error(autorun_mesh):
    c_id = autorun_mesh.add_package("late", make_package(LATE_ADAPTER))
    p_id = autorun_mesh.add_project(
        "late", {"para.xml": PARA.encode(), "late.tpl": b"ok {n}\nbad {zzz}\n"}
    )
    (job_id, *_) = autorun_mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
    job = autorun_mesh.wait_state(job_id, ("COMPLETED", "FAILED"))
    assert job["state"] == "FAILED"
    assert job["error"] == (
        f"file generation of job {job_id} failed: late.tpl:2: unknown parameter 'zzz'"
    )


def test_project_create_prints_the_parameter_file_and_the_package_check(
    autorun_mesh, typo_c_id, tmp_path
):
    (tmp_path / "para.xml").write_text(PARA)
    result = mirror(
        autorun_mesh, "project", "create", "typo-cli", str(tmp_path), "--package", str(typo_c_id)
    )
    assert result.returncode == 1, result.stderr
    assert "para.xml: 3 job(s) on dispatch; parameters: NCPUS, mode, n\n" in result.stdout
    assert (
        f"package {typo_c_id}: 2 placeholder(s) name no parameter:\n"
        "  adapter.xml:7: unknown parameter {nxx} in the value of step 'post'\n"
        "  in.txt.tpl:3: unknown parameter {foo}\n"
    ) in result.stdout
    assert "would be refused (2 problem(s) above)" in result.stderr


def test_project_create_refuses_a_broken_parameter_file_creating_nothing(autorun_mesh, tmp_path):
    (tmp_path / "para.xml").write_text(PARA.replace("1;2;3", "1;x;3"))
    before = autorun_mesh.ok("project", "list")
    result = mirror(autorun_mesh, "project", "create", "broken-cli", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == (
        "mirror: para.xml:2: parameter 'n' value 'x' is not an int; no project was created\n"
    )
    assert autorun_mesh.ok("project", "list") == before
