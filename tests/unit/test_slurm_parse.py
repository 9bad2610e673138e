"""The Slurm executor's pure parts: sbatch arguments, parsers of Slurm's answers, the ledger line."""

import shlex
import subprocess

import pytest

from services.agent import ledger, slurm
from services.agent.slurmexec import batch_script
from services.config import ConfigError, check_executor

# `scontrol show job -o 1` of a step that exited with 3 (Slurm 22.05, trimmed in the middle).
SCONTROL = (
    "JobId=1 JobName=mirror-2-17-flow UserId=root(0) GroupId=root(0) MCS_label=N/A "
    "Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=FAILED "
    "Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 "
    "ExitCode=3:0 RunTime=00:00:00 TimeLimit=00:01:00 Partition=work "
    "AllocNode:Sid=localhost:18092 ReqNodeList=(null) NodeList=vm BatchHost=vm NumNodes=1 "
    "Command=/tmp/job dir/.mirror/slurm/abc.sh WorkDir=/tmp/sl16 Comment=abc  "
    "StdErr=/tmp/sl16/e StdIn=/dev/null StdOut=/tmp/sl16/o Power= \n"
)


def test_scontrol_fields_state_exit_code_and_nodes():
    fields = slurm.parse_scontrol(SCONTROL)
    assert fields["JobId"] == "1"
    assert fields["JobName"] == "mirror-2-17-flow"
    assert slurm.job_state(fields) == "FAILED"
    assert slurm.exit_code(fields) == (3, 0)
    assert slurm.node_list(fields) == "vm"
    assert fields["Partition"] == "work"
    # A value with a space keeps it; an empty value stays empty.
    assert fields["Command"] == "/tmp/job dir/.mirror/slurm/abc.sh"
    assert fields["Power"] == ""


def test_scontrol_pending_and_cancelled_states():
    pending = slurm.parse_scontrol("JobId=9 JobState=PENDING Reason=Priority NodeList=(null)")
    assert slurm.job_state(pending) == "PENDING"
    assert slurm.node_list(pending) == ""
    assert slurm.exit_code(pending) is None
    cancelled = slurm.parse_scontrol("JobId=9 JobState=CANCELLED by 0 ExitCode=0:15")
    assert slurm.job_state(cancelled) == "CANCELLED"
    assert slurm.exit_code(cancelled) == (0, 15)
    assert slurm.parse_scontrol("") == {}


def test_sbatch_answer():
    assert slurm.parse_sbatch("42\n") == 42
    assert slurm.parse_sbatch("43;mirror\n") == 43
    with pytest.raises(slurm.SlurmError, match="sbatch gave no job id: 'Submitted batch job'"):
        slurm.parse_sbatch("Submitted batch job")
    with pytest.raises(slurm.SlurmError, match="sbatch gave no job id"):
        slurm.parse_sbatch("")


def test_squeue_rows():
    text = (
        "12|RUNNING|vm|work|mirror-2-17-flow|tok1|/w/17/.mirror/slurm/tok1.sh\n"
        "13|PENDING|(null)|work|mirror-2-18-grid|(null)|/w/18/.mirror/slurm/t.sh\n"
        "garbage line\n"
    )
    assert slurm.parse_squeue(text) == [
        {
            "id": 12,
            "state": "RUNNING",
            "nodelist": "vm",
            "partition": "work",
            "name": "mirror-2-17-flow",
            "comment": "tok1",
            "command": "/w/17/.mirror/slurm/tok1.sh",
        },
        {
            "id": 13,
            "state": "PENDING",
            "nodelist": "",
            "partition": "work",
            "name": "mirror-2-18-grid",
            "comment": "",
            "command": "/w/18/.mirror/slurm/t.sh",
        },
    ]


def test_sinfo_cores_per_partition():
    text = "work*|1/1/0/2\ndebug|0/8/0/8\nbroken|x/y\n"
    assert slurm.parse_sinfo(text) == {
        "work": {"idle": 1, "alloc": 1, "other": 0, "total": 2},
        "debug": {"idle": 8, "alloc": 0, "other": 0, "total": 8},
    }


def test_queue_counts_per_partition():
    text = "PD|work\nR|work\nR|work\nCG|work\nR|debug\nbad\n"
    assert slurm.parse_queue_counts(text) == {"PD": 1, "R": 3}
    assert slurm.parse_queue_counts(text, "work") == {"PD": 1, "R": 2}


def test_step_names_round_trip_per_machine():
    name = slurm.step_name(2, 17, "flow-b")
    assert name == "mirror-2-17-flow-b"
    assert slurm.parse_step_name(name, 2) == (17, "flow-b")
    assert slurm.parse_step_name(name, 3) is None
    assert slurm.parse_step_name("mirror-2-x-flow", 2) is None


def test_sbatch_command_line():
    argv = slurm.sbatch_argv(
        "/w/.mirror/slurm/t.sh",
        name="mirror-2-17-flow",
        workdir="/w/FLOW",
        stdout="/w/.mirror/stdout",
        stderr="/w/.mirror/stderr",
        cpus=4,
        time_minutes=0.02,
        partition="work",
        account="",
        comment="t",
        options=["--qos=short"],
    )
    assert argv[:2] == ["sbatch", "--parsable"]
    for option in (
        "--cpus-per-task=4",
        "--time=1",
        "--chdir=/w/FLOW",
        "--output=/w/.mirror/stdout",
        "--open-mode=append",
        "--export=NONE",
        "--partition=work",
        "--qos=short",
    ):
        assert option in argv
    assert not any(a.startswith("--account") for a in argv)
    assert argv[-1] == "/w/.mirror/slurm/t.sh"
    assert slurm.time_arg(90.5) == "91"


def test_batch_script_keeps_only_the_given_environment(tmp_path):
    exit_file = tmp_path / "steps"
    env = {"PATH": "/usr/bin:/bin", "A": "it's $x", "MIRROR_RUN_TOKEN": "t"}
    env["MIRROR_EXIT_FILE"] = str(exit_file)
    script = tmp_path / "s.sh"
    script.write_text(batch_script(["sh", "-c", 'env; echo "$1"', "x", "a b"], env, 7, "s", "t"))
    done = subprocess.run(
        ["/bin/sh", str(script)],
        capture_output=True,
        text=True,
        env={"SECRET": "no", "SLURM_JOB_ID": "5", "PATH": "/usr/bin:/bin"},
    )
    lines = done.stdout.splitlines()
    assert "A=it's $x" in lines and "SLURM_JOB_ID=5" in lines
    assert not any(line.startswith("SECRET=") for line in lines)
    assert lines[-1] == "a b"
    assert exit_file.read_text() == "exit t 0\n"
    assert shlex.split(script.read_text().splitlines()[-1])[0] == "exec"


def test_ledger_records_the_slurm_job_of_a_run(tmp_path):
    path = str(tmp_path / "steps")
    ledger.record_start(path, "flow", "t1", 0, 0)
    ledger.record_slurm(path, "t1", 12)
    ledger.record_start(path, "flow", "t2", 5, 0)
    with open(path, "a") as out:
        out.write("slurm t2 notanumber\nexit t1 0\n")
    first, second = ledger.read(path)
    assert (first.slurm, first.code) == (12, 0)
    assert second.slurm is None


def test_executor_settings_are_checked():
    agent = {"executor": "slurm", "slurm": {"poll_interval": "0.5"}}
    check_executor(agent)
    assert agent["slurm"] == {"sbatch_options": [], "poll_interval": 0.5}
    with pytest.raises(
        ConfigError, match="AGENT.executor is 'pbs'; it must be one of local, slurm"
    ):
        check_executor({"executor": "pbs"})
    with pytest.raises(ConfigError, match="AGENT.slurm.sbatch_options must be a list of strings"):
        check_executor({"slurm": {"sbatch_options": "--qos=x"}})
    with pytest.raises(ConfigError, match="AGENT.slurm.poll_interval must be a number"):
        check_executor({"slurm": {"poll_interval": "soon"}})
    with pytest.raises(ConfigError, match="more than 0 seconds"):
        check_executor({"slurm": {"poll_interval": 0}})
