"""Ctrl+C under the seed-001 decorator, at random points of a submit loop and a polling loop.

Each parametrized test runs one subprocess that goes through ``SEED001_ROUNDS``
(50) decorated workflows; the test interrupts each at a random moment and
then checks, on the mesh, that no job of the loop is left unfinished.
"""

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from services.common.jobstates import ACTIVE, QUEUED
from tests.integration.test_seed001 import mesh, scheduler  # noqa: F401 - fixtures
from tests.mesh import ROOT, wait_for

# -- Ctrl+C ---------------------------------------------------------------------------
INTERRUPTED = """
import faulthandler, random, signal, sys, time
faulthandler.register(signal.SIGUSR1)
from services.client import (
    get_job_status, graceful_shutdown_on_keyboard_interrupt, initialize_scheduler_environment,
    submit_job,
)
initialize_scheduler_environment(config_file_path=sys.argv[1])
mode, rounds = sys.argv[2], int(sys.argv[3])

@graceful_shutdown_on_keyboard_interrupt
def workflow(n):
    ids = []
    print(f"go {n}", flush=True)
    while True:
        if mode == "submit" or not ids:
            ids.append(submit_job("sleep 120", job_id=f"{mode}-{n}-{len(ids)}"))
        else:
            get_job_status(ids[-1])

for n in range(rounds):
    try:
        workflow(n)
    except KeyboardInterrupt:
        print(f"stopped {n}", flush=True)
print("done", flush=True)
"""


@pytest.mark.parametrize("mode", ["submit", "poll"])
def test_ctrl_c_at_random_points_leaves_no_job_running(scheduler, mesh, tmp_path, mode):  # noqa: F811
    rounds = int(os.environ.get("SEED001_ROUNDS", "50"))
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(mesh.clusters_path), mode, str(rounds)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()

    def next_line():
        try:
            return lines.get(timeout=60)
        except queue.Empty:
            # A stalled child shows where it waits (faulthandler) before it is killed.
            proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            proc.kill()
            pytest.fail(f"the workflow stalled:\n{proc.stderr.read()[-8000:]}")

    rng = random.Random(15)
    try:
        for n in range(rounds):
            assert next_line() == f"go {n}\n"
            time.sleep(rng.uniform(0.0, 0.25))
            proc.send_signal(signal.SIGINT)
            assert next_line() == f"stopped {n}\n"
        assert next_line() == "done\n"
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert "UnexpectedFrame" not in err and "Traceback" not in err, err

    def names_alive():
        jobs = scheduler.client.jobs(state=[QUEUED, *ACTIVE], limit=10000)
        return [j["name"] for j in jobs if j["name"].startswith(f"{mode}-")]

    wait_for(lambda: not names_alive(), 60, what=f"every {mode} job stopped")
    stopped = [j for j in scheduler.client.jobs(limit=10000) if j["name"].startswith(f"{mode}-")]
    assert stopped and {j["state"] for j in stopped} == {"KILLED"}
