"""``mirror --help`` names every part the runner starts."""

import subprocess
import sys

from tests.mesh import ROOT


def test_mirror_help_lists_every_part():
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    for part in ("central", "agent", "gateway", "ftp", "up", "demo"):
        assert part in out.stdout
