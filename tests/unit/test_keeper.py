"""The step keeper: steps started without a shell, their ends in the ledger, and outliving the agent."""

import time
import uuid

import eventlet
import pytest

from services.agent import ledger, processes
from services.agent.keeper import exit_code
from services.agent.keeperclient import GONE, KeeperClient

ENV = {"PATH": "/usr/bin:/bin"}


@pytest.fixture
def keeper():
    client = KeeperClient()
    yield client
    client.close()


def run(keeper, tmp_path, argv):
    """Start ``argv`` in the keeper with a fresh run token; ``(pid, token, ledger path)``."""
    token = uuid.uuid4().hex
    path = tmp_path / "steps"
    ledger.record_start(str(path), "s", token, 0, 0)
    pid, _ = keeper.start(
        argv,
        cwd=str(tmp_path),
        env={**ENV, "MIRROR_RUN_TOKEN": token, "MIRROR_EXIT_FILE": str(path)},
        stdout=tmp_path / "out",
        stderr=tmp_path / "err",
        ledger=path,
        token=token,
    )
    return pid, token, path


def test_a_death_by_signal_is_recorded_as_a_shell_would():
    assert exit_code(0) == 0
    assert exit_code(7 << 8) == 7
    assert exit_code(9) == 137


@pytest.mark.parametrize(("argv", "code"), [(["true"], 0), (["sh", "-c", "exit 7"], 7)])
def test_the_exit_code_is_in_the_ledger_before_the_agent_learns_it(keeper, tmp_path, argv, code):
    pid, token, path = run(keeper, tmp_path, argv)

    assert keeper.wait(pid, timeout=10) == (True, code)
    assert ledger.exit_code(str(path), token) == code


def test_a_step_runs_as_its_own_session_leader_without_a_shell(keeper, tmp_path):
    pid, token, _ = run(keeper, tmp_path, ["sleep", "30"])
    started = processes.create_time(pid)

    assert processes.leads(pid, started, token)
    assert processes.tree(pid, started, token)[0].name() == "sleep"
    processes.kill_tree(pid, started, token, 1)
    assert keeper.wait(pid, timeout=10) == (True, 128 + 15)


def test_a_command_exec_cannot_start_falls_back_to_the_shell(keeper, tmp_path):
    pid, token, path = run(keeper, tmp_path, ["no-such-command-here"])

    assert keeper.wait(pid, timeout=10) == (True, 127)
    assert ledger.exit_code(str(path), token) == 127
    assert "not found" in (tmp_path / "err").read_text()


def test_a_step_in_a_missing_directory_is_refused(keeper, tmp_path):
    with pytest.raises(Exception, match="FileNotFoundError"):
        keeper.start(
            ["true"],
            cwd=str(tmp_path / "gone"),
            env=ENV,
            stdout=tmp_path / "out",
            stderr=tmp_path / "err",
            ledger=tmp_path / "steps",
            token="t",
        )


def test_the_keeper_outlives_its_agent_and_records_the_end(keeper, tmp_path):
    pid, token, path = run(keeper, tmp_path, ["sh", "-c", "sleep 0.5; exit 3"])
    proc = keeper.proc
    keeper.close()
    eventlet.sleep(0.1)
    assert proc.poll() is None  # it keeps the step

    deadline = time.monotonic() + 10
    while ledger.exit_code(str(path), token) is None and time.monotonic() < deadline:
        eventlet.sleep(0.05)
    assert ledger.exit_code(str(path), token) == 3
    # With its last step reaped and its agent gone, it exits.
    while proc.poll() is None and time.monotonic() < deadline:
        eventlet.sleep(0.05)
    assert proc.poll() == 0


def test_waits_fall_back_to_the_pid_when_the_keeper_dies(keeper, tmp_path):
    pid, token, _ = run(keeper, tmp_path, ["sleep", "30"])
    keeper.proc.kill()

    assert keeper.wait(pid, timeout=10) == (True, GONE)
    started = processes.create_time(pid)
    assert processes.alive(pid, started)
    processes.kill_tree(pid, started, token, 1)
    assert processes.wait_exit(pid, timeout=10, started=started)[0]
