"""What a step and a hook see on a real mesh: no secret of the agent, no reserved variable."""

import pytest

from tests.integration.conftest import make_package
from tests.mesh import Mesh

SECRET = "s3cret-of-the-agent"
ADAPTER = """<Adapter name="probe" hooks="hooks.py">
<Steps>
<ExeArgument id="look" type="shell" value="env &gt; env.txt" priority="1" premethod="probe"/>
</Steps>
<Result><Data key="env" path="env.txt"/></Result>
</Adapter>
"""
HOOKS = """import os

def probe(ctx):
    ctx.publish["hook_env"] = " ".join(sorted(os.environ))
"""
PARA = b'<Para><Param name="NCPUS" type="int">1</Param></Para>'


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, amqp_uri):
    """Core services and an autorun agent whose own environment holds secrets."""
    mesh = Mesh(tmp_path_factory.mktemp("trust"), amqp_uri)
    try:
        mesh.start_core()
        mesh.start_agent(
            1,
            autorun=True,
            env={"FTP_WRITER_PASSWORD": SECRET, "AMQP_URI": mesh.config["AMQP_URI"]},
        )
        yield mesh
    finally:
        mesh.close()


def env_of(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_a_step_and_its_hook_see_no_secret_of_the_agent(mesh):
    c_id = mesh.add_package("probe", make_package(ADAPTER, {"hooks.py": HOOKS}))
    p_id = mesh.add_project("probe", {"para.xml": PARA})
    (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=1)

    job = mesh.wait_state(job_id, ("COMPLETED", "FAILED"))

    assert job["state"] == "COMPLETED", job["error"]
    with open(f"{job['path']}/env.txt") as fh:
        text = fh.read()
    env = env_of(text)
    assert SECRET not in text and "amqp://" not in text
    assert "FTP_WRITER_PASSWORD" not in env and "AMQP_URI" not in env
    assert env["MIRROR_JOB_ID"] == str(job_id) and env["NCPUS"] == "1"
    hook_env = set(mesh.ok("jobgetdata", "do", job_id=job_id)["process"]["hook_env"].split())
    assert "MIRROR_JOB_ID" in hook_env and "MIRROR_HOOK" in hook_env
    assert not {"FTP_WRITER_PASSWORD", "AMQP_URI"} & hook_env


def test_a_script_sees_only_what_it_was_given(mesh):
    job_id = mesh.ok(
        "jobdispatch", "submit", script="#!/bin/sh\nenv\n", environment={"GIVEN": "yes"}, rid=1
    )
    job = mesh.wait_state(job_id, ("COMPLETED", "FAILED"))
    assert job["state"] == "COMPLETED", job["error"]
    out = mesh.ok("jobagent_1", "logs", job_id=job_id)["stdout"]
    env = env_of(out)
    assert env["GIVEN"] == "yes"
    assert SECRET not in out and "FTP_WRITER_PASSWORD" not in env


@pytest.mark.parametrize("name", ["LD_PRELOAD", "MIRROR_JOB_DIR"])
def test_a_script_setting_a_reserved_variable_is_refused_at_submit(mesh, name):
    before = mesh.ok("job", "list", limit=1)
    answer = mesh.rpc(
        "jobdispatch",
        "submit",
        script="#!/bin/sh\ntouch ran\n",
        environment={name: "/tmp/evil"},
        rid=1,
    )
    assert answer == [
        -1,
        f"environment variable {name} is reserved: "
        "a submission cannot set MIRROR_* or LD_* variables",
    ]
    assert mesh.ok("job", "list", limit=1) == before
