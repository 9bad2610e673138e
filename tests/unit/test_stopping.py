"""``stop_jobs``: one jobkill call per machine, its storage and RPC replaced by recorders."""

from types import SimpleNamespace

from nameko.exceptions import RpcTimeout

from services.central.stopping import stop_jobs
from services.common.errors import MirrorError


class FakeJobs:
    """Jobs by id; records central's own KILLED reports."""

    def __init__(self, jobs):
        self.jobs = {job["job_id"]: job for job in jobs}
        self.reports = []

    def cancel_queued(self, job_id, reason):
        return self.jobs[job_id]["state"] == "QUEUED"

    def get(self, job_id):
        if job_id not in self.jobs:
            raise MirrorError(f"job is not existed , job : {job_id}")
        return self.jobs[job_id]

    def report(self, job_id, rid, changes):
        self.reports.append((job_id, changes["error"]))


class FakeServices:
    """Machine 1 stops what it is asked, machine 3 times out, machine 4 refuses one job."""

    def __init__(self):
        self.calls = []

    def call(self, service, method, kwargs, timeout):
        self.calls.append((service, method, kwargs, timeout))
        if service == "jobkill_3":
            raise RpcTimeout()
        ids = kwargs["job_ids"]
        if service == "jobkill_4":
            return 0, {"stopped": ids[1:], "errors": {str(ids[0]): "job not running"}}
        return 0, {"stopped": ids, "errors": {}}


def job(job_id, rid, state="RUNNING"):
    return {"job_id": job_id, "rid": rid, "state": state}


def test_one_call_per_online_machine_and_central_records_the_rest():
    jobs = [
        job(1, 1),
        job(2, 1, "PREPARING"),
        job(3, 2),
        job(4, 3),
        job(5, None, "QUEUED"),
        job(6, 1, "COMPLETED"),
        job(7, 4),
        job(8, 4),
    ] + [job(100 + n, 1) for n in range(20)]
    store = FakeJobs(jobs)
    db = SimpleNamespace(jobs=store, machines=SimpleNamespace(is_online=lambda rid: rid != 2))
    services = FakeServices()
    stopped, errors = stop_jobs(db, services, 10.0, jobs, "killed with its sweep")
    on_1 = [1, 2] + [100 + n for n in range(20)]
    assert services.calls == [
        ("jobkill_1", "do", {"job_ids": on_1, "reason": "killed with its sweep"}, 20.0),
        ("jobkill_3", "do", {"job_ids": [4], "reason": "killed with its sweep"}, 10.0),
        ("jobkill_4", "do", {"job_ids": [7, 8], "reason": "killed with its sweep"}, 10.0),
    ]
    assert sorted(stopped) == sorted([5, 3, *on_1, 4, 8])
    assert errors == ["job 7: job not running"]
    assert store.reports == [
        (3, "killed with its sweep; resource machine 2 is offline"),
        (4, "killed with its sweep; resource machine 3 did not answer (RpcTimeout)"),
    ]
