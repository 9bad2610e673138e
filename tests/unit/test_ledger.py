"""The step ledger: runs, their output windows and their exit codes, from small files."""

import json
import subprocess

from services.agent import ledger
from services.agent.processes import WRAPPER

A, B, C = "a" * 32, "b" * 32, "c" * 32


def test_runs_take_their_window_up_to_the_next_run_and_their_exit_codes(tmp_path):
    path = tmp_path / "steps"
    ledger.record_start(path, "prep", A, 0, 0)
    path.open("a").write(f"exit {A} 0\n")
    ledger.record_start(path, "solve", B, 12, 5)
    path.open("a").write(f"exit {B} 3\n")
    ledger.record_start(path, "prep", C, 40, 9)

    runs = ledger.read(path)

    assert [(r.step, r.out, r.err, r.out_end, r.err_end, r.code) for r in runs] == [
        ("prep", 0, 0, 12, 5, 0),
        ("solve", 12, 5, 40, 9, 3),
        ("prep", 40, 9, None, None, None),
    ]
    assert ledger.last_run(path, "prep").token == C
    assert ledger.last_run(path, "post") is None
    assert (ledger.exit_code(path, B), ledger.exit_code(path, C)) == (3, None)


def test_lines_cut_short_or_foreign_are_skipped():
    start = json.dumps({"step": "prep", "token": A, "out": 0, "err": 0})
    text = "\n".join(
        [start, '{"step": "solve", "tok', f"exit {A}", "exit unknown 1", f"exit {A} zero"]
        + ["garbage", f"exit {A} -15", ""]
    )
    (run,) = ledger.parse(text)
    assert (run.step, run.code) == ("prep", -15)


def test_a_missing_ledger_has_no_runs(tmp_path):
    assert ledger.read(tmp_path / "none") == []
    assert ledger.size(tmp_path / "none") == 0


def test_read_window_stops_at_the_end_of_the_run(tmp_path):
    path = tmp_path / "stdout"
    path.write_bytes(b"first run\nsecond run\n")
    assert ledger.read_window(path, 0, 10, 0, 100) == b"first run\n"
    assert ledger.read_window(path, 0, 10, 6, 100) == b"run\n"
    assert ledger.read_window(path, 0, 10, 10, 100) == b""
    assert ledger.read_window(path, 10, None, 0, 100) == b"second run\n"
    assert ledger.read_window(path, 10, None, 0, 6) == b"second"
    assert ledger.read_window(tmp_path / "none", 0, None, 0, 10) == b""


def test_the_step_wrapper_appends_its_exit_line(tmp_path):
    path = tmp_path / "steps"
    ledger.record_start(path, "solve", B, 0, 0)
    env = {"MIRROR_RUN_TOKEN": B, "MIRROR_EXIT_FILE": str(path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["/bin/sh", "-c", WRAPPER, "step", "sh", "-c", "exit 7"], env=env)
    assert done.returncode == 7
    assert ledger.exit_code(path, B) == 7
