"""The many-jobs kill of an agent (`services/agent/killing.py`), its stages replaced."""

from types import SimpleNamespace

import pytest

from services.agent import killing
from services.common.errors import MirrorError


@pytest.mark.parametrize(
    ("job_ids", "problem"),
    [
        ([], "job_ids must be a non-empty list of job ids, got []"),
        ("7", "job_ids must be a non-empty list of job ids, got '7'"),
        (None, "job_ids must be a non-empty list of job ids, got None"),
        ([1, "x"], "job_ids entry must be an integer, got 'x'"),
    ],
)
def test_bad_job_ids_are_refused(job_ids, problem):
    with pytest.raises(MirrorError) as caught:
        killing.job_id_list(job_ids)
    assert str(caught.value) == problem


def test_every_job_is_stopped_and_refusals_are_named(monkeypatch):
    killed = []

    def fetch(rt, job_id):
        if job_id == 2:
            raise MirrorError("job 2 belongs to resource machine 3, not 1")
        return {"job_id": job_id, "state": "FAILED" if job_id == 4 else "RUNNING"}

    def kill(rt, job, reason):
        if job["state"] == "FAILED":
            raise MirrorError(f"job not running , jobid : {job['job_id']}")
        killed.append((job["job_id"], reason))

    monkeypatch.setattr(killing.stages, "fetch", fetch)
    monkeypatch.setattr(killing.stages, "kill", kill)
    answer = killing.kill_many(SimpleNamespace(rid=1), [1, "2", 3, 4], "killed with its sweep")
    assert answer == {
        "stopped": [1, 3],
        "errors": {
            "2": "job 2 belongs to resource machine 3, not 1",
            "4": "job not running , jobid : 4",
        },
    }
    assert sorted(killed) == [(1, "killed with its sweep"), (3, "killed with its sweep")]
