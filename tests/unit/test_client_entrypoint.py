"""The client's entrypoint check: programs and scripts are absolute paths or found on PATH."""

import pytest

from services.client import check_entrypoint, submit_job


@pytest.mark.parametrize(
    "entrypoint",
    ["python script.py", "python3 -u jobs/train.py --epochs 3", "./run.sh", "bin/tool"],
)
def test_a_relative_path_in_the_entrypoint_is_refused(entrypoint):
    with pytest.raises(ValueError, match="entrypoint must use absolute paths"):
        submit_job(entrypoint)


@pytest.mark.parametrize(
    "entrypoint",
    [
        "python /home/user/train.py --input data.csv",
        "/usr/bin/env",
        "sleep 60",
        "OMP_NUM_THREADS=1 python3.11 -W ignore /abs/x.py",
        "bash -lc 'cd work && make'",
        "python -m http.server",
    ],
)
def test_absolute_and_path_commands_are_accepted(entrypoint):
    check_entrypoint(entrypoint)
