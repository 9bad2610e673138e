"""What a step and a hook see: an allow-listed environment, their own process, their own user.

Real steps and hooks run in real processes; central and the file server are fakes.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from agent_support import STEPS, TRIVIAL, close, make_job, prepared, run_to_end, runtime

from services.agent import identity, processes
from services.agent.services import agent_services
from services.agent.steprun import launch_step
from services.agent.steps import base_env
from services.common.errors import MirrorError
from services.config import ConfigError

SECRETS = {"AMQP_URI": "amqp://mirror:s3cret@broker", "FTP_WRITER_PASSWORD": "s3cret"}
HOOKED = TRIVIAL.replace('<Adapter name="trivial"', '<Adapter name="trivial" hooks="hooks.py"')
HOOKS = """import os, sys, time

def probe(ctx):
    ctx.publish["pid"] = os.getpid()
    ctx.publish["uid"] = os.getuid()
    ctx.publish["cwd"] = os.getcwd()
    ctx.publish["env"] = " ".join(sorted(os.environ))
    ctx.publish["ncpus"] = os.environ["NCPUS"]
    print("hook output")

def failing(ctx):
    raise ValueError("bad mesh")

def slow(ctx):
    time.sleep(60)

def dying(ctx):
    os._exit(3)
"""


def with_step(command, **attrs):
    """The trivial adapter whose first step is the shell ``command``, with ``attrs``."""
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    step = f'<ExeArgument id="prepare" type="shell" value="{command}" priority="1"{extra}/>'
    return HOOKED.replace(STEPS, step)


@pytest.fixture
def secrets(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_MESSAGES", "C")


def env_file(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


# -- the environment ----------------------------------------------------------------
def test_base_env_keeps_only_the_allow_list():
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "TZ": "UTC",
        "TMPDIR": "/tmp",
        "USER": "root",
        "PYTHONPATH": "/x",
        "MIRROR_DATA": "/srv/mirror",
        "LD_PRELOAD": "/evil.so",
        **SECRETS,
    }
    env = base_env(environ)
    assert set(env) == {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"}
    assert env["PATH"].endswith(":/usr/bin")
    run_as = identity.RunAs("someone", 1234, 1234, (1234,), "/home/someone")
    assert base_env(environ, run_as)["HOME"] == "/home/someone"
    assert base_env(environ, run_as)["USER"] == "someone"


def test_a_step_sees_no_secret_of_the_agent(machine, secrets):
    job, served = make_job(with_step("env &gt; env.txt"), {"hooks.py": HOOKS})
    job["environment"] = {"MY_SETTING": "on", "PATH": "/usr/bin:/bin"}
    rt = machine(job, served)
    prepared(rt, job)
    run_to_end(rt, job)

    env = env_file(rt.workspace.root / "job5" / "env.txt")
    assert not set(SECRETS) & set(env)
    assert env["MY_SETTING"] == "on" and env["PATH"] == "/usr/bin:/bin"
    assert env["LC_MESSAGES"] == "C" and env["NCPUS"] == "1"
    assert env["MIRROR_JOB_ID"] == "5" and env["MIRROR_STEP"] == "prepare"
    assert rt.central.job["steps"][0]["state"] == "DONE"


@pytest.mark.parametrize("name", ["MIRROR_JOB_DIR", "MIRROR_RUN_TOKEN", "LD_PRELOAD"])
def test_a_submission_cannot_set_reserved_variables(machine, name):
    job, served = make_job()
    job["environment"] = {name: "/tmp/x"}
    rt = machine(job, served)
    prepared(rt, job)

    with pytest.raises(MirrorError, match=f"environment variable {name} is reserved"):
        launch_step(rt, job)

    assert rt.central.job["state"] == "FAILED"
    assert rt.central.job["error"] == (
        f"step prepare: job 5: environment variable {name} is reserved: "
        "a submission cannot set MIRROR_* or LD_* variables"
    )
    assert rt.running == {}


# -- hooks in a process of their own ------------------------------------------------------
def test_a_hook_runs_in_a_child_process_with_the_job_environment(machine, secrets):
    job, served = make_job(with_step("true", premethod="probe"), {"hooks.py": HOOKS})
    rt = machine(job, served)
    prepared(rt, job)
    run_to_end(rt, job)

    published = rt.published[5]
    root = rt.workspace.root / "job5"
    assert published["pid"] != os.getpid()
    assert published["cwd"] == str(root)
    assert published["ncpus"] == "1"
    names = set(published["env"].split())
    assert not set(SECRETS) & names
    assert {"MIRROR_JOB_ID", "MIRROR_STEP", "MIRROR_HOOK", "PATH"} <= names
    assert (root / ".mirror" / "hooks.log").read_text() == "hook output\n"
    assert rt.central.job["steps"][0]["state"] == "DONE"


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ("failing", "pre hook failing failed: ValueError: bad mesh"),
        ("slow", "pre hook slow failed: TimeoutError: still running after 0.5 s"),
        ("dying", "pre hook dying failed: its process exited with code 3"),
    ],
)
def test_a_failing_hook_fails_the_step_with_its_message(machine, hook, message):
    job, served = make_job(with_step("true", premethod=hook), {"hooks.py": HOOKS})
    rt = machine(job, served, hook_timeout=0.5)
    prepared(rt, job)

    with pytest.raises(MirrorError, match="failed"):
        launch_step(rt, job)

    assert rt.central.job["state"] == "FAILED"
    assert rt.central.job["error"] == f"step prepare: {message}"
    assert processes.find_step(5, "prepare") is None


def test_a_failing_post_hook_fails_the_job(machine):
    job, served = make_job(with_step("true", postmethod="failing"), {"hooks.py": HOOKS})
    rt = machine(job, served)
    prepared(rt, job)
    run_to_end(rt, job)
    assert rt.central.job["error"] == "step prepare: post hook failing failed: ValueError: bad mesh"


# -- run_as ------------------------------------------------------------------------------
RUN_AS = "mirror-test-runas"


@pytest.fixture
def run_as_user():
    """A real unprivileged user (created when absent); skipped unless the tests run as root."""
    if os.geteuid() != 0:
        pytest.skip("run_as needs the tests to run as root")
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", RUN_AS], check=True, timeout=60)
    return pwd.getpwnam(RUN_AS)


@pytest.fixture
def open_tmp():
    """A directory other users can traverse (pytest's own tmp is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="mirror-runas-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_run_as_runs_steps_and_hooks_as_that_user(run_as_user, open_tmp):
    job, served = make_job(
        with_step("id -u &gt; uid.txt; id -G &gt; groups.txt", premethod="probe"),
        {"hooks.py": HOOKS},
    )
    rt = runtime(open_tmp, job, served, run_as=RUN_AS)
    try:
        prepared(rt, job)
        run_to_end(rt, job)
    finally:
        close(rt)

    root = rt.workspace.root / "job5"
    assert rt.central.job["steps"][0]["state"] == "DONE", rt.central.job["error"]
    assert (root / "uid.txt").read_text().strip() == str(run_as_user.pw_uid)
    assert (root / "groups.txt").read_text().split() == [
        str(g) for g in os.getgrouplist(RUN_AS, run_as_user.pw_gid)
    ]
    assert rt.published[5]["uid"] == run_as_user.pw_uid
    for path in [root, root / "input.txt", root / ".mirror" / "steps", root / ".mirror" / "calc"]:
        assert path.stat().st_uid == run_as_user.pw_uid, path


def test_run_as_refuses_an_unknown_user_or_an_agent_not_root(run_as_user):
    with pytest.raises(ConfigError) as info:
        identity.resolve("mirror-no-such-user")
    assert str(info.value) == (
        "AGENT.run_as: user 'mirror-no-such-user' does not exist on this machine"
    )
    with pytest.raises(ConfigError) as info:
        identity.resolve(RUN_AS, euid=1000)
    assert str(info.value) == (
        f"AGENT.run_as is '{RUN_AS}', but the agent runs as uid 1000, not root: "
        "start the agent as root or leave AGENT.run_as empty"
    )
    assert identity.resolve("") is None
    assert identity.resolve(RUN_AS).uid == run_as_user.pw_uid


def test_an_agent_with_an_unknown_run_as_user_does_not_start():
    config = {"AGENT": {"rid": 1, "run_as": "mirror-no-such-user", "heartbeat": 1}}
    with pytest.raises(SystemExit) as info:
        agent_services(config)
    assert str(info.value) == (
        "mirror: AGENT.run_as: user 'mirror-no-such-user' does not exist on this machine"
    )
