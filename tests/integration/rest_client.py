"""REST calls for the tests of the Slurm-style API, and seed 000's client as its users write it."""

import time

import requests

from tests.mesh import wait_for

FINAL = ("COMPLETED", "FAILED", "CANCELLED")


def payload(mesh, script='#!/bin/bash\necho "Hello World"\n', **job):
    """A submission shaped like seed 002's example, working in ``shared/``."""
    spec = {
        "account": "project_alpha",
        "environment": {"PATH": "/usr/local/bin:/usr/bin:/bin"},
        "current_working_directory": str(mesh.shared),
        "standard_output": "output-%j.log",
        "standard_error": "error-%j.log",
        "ntasks_per_node": 1,
        "cpus_per_task": 1,
        "memory_per_node": "1G",
        "name": "test_job",
        "time_limit": "30",
        "partition": "default",
        "exclusive": False,
    }
    spec.update(job)
    return {"job": spec, "script": script}


def submit(mesh, body, url=None, **kwargs):
    return requests.post(f"{url or mesh.base_url}/jobs/submit", json=body, timeout=30, **kwargs)


def submit_ok(mesh, body):
    response = submit(mesh, body)
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


def query(mesh, job_id):
    response = requests.get(f"{mesh.base_url}/jobs/query/{job_id}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def cancel(mesh, job_id):
    return requests.post(f"{mesh.base_url}/jobs/cancel/{job_id}", timeout=30)


def wait_rest(mesh, job_id, states=FINAL, timeout=30):
    states = (states,) if isinstance(states, str) else states
    return wait_for(
        lambda: (job := query(mesh, job_id))["state"] in states and job,
        timeout,
        what=f"job {job_id} in {states}",
    )


def assert_error(response, status, fragment):
    """A JSON ``{"detail": str}`` with the status, never HTML or a traceback."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in response.text
    body = response.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str), body
    assert fragment in body["detail"], body


class SeedClient:
    """Seed 000's ``SCNSConductorClient``, as its users would write it (requests, no Mirror)."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")

    def submit_job(
        self,
        script,
        name,
        account,
        work_dir,
        cpus=1,
        time_limit="60",
        environment=None,
        partition="default",
    ):
        body = {
            "job": {
                "account": account,
                "environment": environment or {},
                "current_working_directory": work_dir,
                "standard_output": f"{name}.out",
                "standard_error": f"{name}.err",
                "ntasks_per_node": 1,
                "cpus_per_task": cpus,
                "memory_per_node": f"{cpus * 2}G",
                "name": name,
                "time_limit": time_limit,
                "partition": partition,
                "exclusive": False,
            },
            "script": script,
        }
        response = requests.post(f"{self.base_url}/jobs/submit", json=body, timeout=30)
        response.raise_for_status()
        return int(response.json()["job_id"])

    def query_job(self, job_id):
        response = requests.get(f"{self.base_url}/jobs/query/{job_id}", timeout=30)
        response.raise_for_status()
        return response.json()

    def cancel_job(self, job_id):
        response = requests.post(f"{self.base_url}/jobs/cancel/{job_id}", timeout=30)
        response.raise_for_status()

    def wait_for_job(self, job_id, check_interval=0.3, timeout=None):
        started = time.time()
        while True:
            state = self.query_job(job_id)["state"]
            if state in ["COMPLETED", "FAILED", "CANCELLED"]:
                return state
            if timeout and time.time() - started > timeout:
                raise TimeoutError(f"job {job_id} timed out")
            time.sleep(check_interval)

    def get_job_output(self, job_id):
        job_log = self.query_job(job_id)["job_log"]
        return job_log["stdout"], job_log["stderr"]
