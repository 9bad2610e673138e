"""``sigint_deferred``: Ctrl+C during a call is delivered after it, whatever the timing.

The checks run in a fresh interpreter: the test process is monkey-patched by
eventlet, and there the main thread is not the one signals reach.
"""

import subprocess
import sys
import textwrap

from tests.mesh import ROOT

SCRIPT = """
import os, signal
from services.client import deferred
from services.client.deferred import sigint_deferred

def interrupted_block():
    reached = False
    try:
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            reached = True
    except KeyboardInterrupt:
        return reached
    raise AssertionError("the deferred SIGINT was never delivered")

assert interrupted_block(), "SIGINT cut the block short"
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

# A SIGINT landing while __exit__ puts the old handler back raises there; later
# blocks must still defer.
real, calls = signal.signal, []
def restore_then_interrupt(signum, handler):
    calls.append(handler)
    previous = real(signum, handler)
    if len(calls) == 2:
        raise KeyboardInterrupt
    return previous
deferred.signal.signal = restore_then_interrupt
try:
    with sigint_deferred():
        pass
except KeyboardInterrupt:
    pass
deferred.signal.signal = real
assert interrupted_block(), "a block after an interrupted __exit__ no longer defers"
print("ok")
"""


def test_sigint_is_deferred_to_the_end_of_the_block_even_after_an_interrupted_exit():
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
