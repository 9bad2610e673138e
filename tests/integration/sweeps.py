"""Helpers of the autorun tests: small parameter files and packages, waits on queues and jobs."""

from services.common.jobstates import FINAL
from services.common.names import job_queue
from tests.integration.conftest import make_package
from tests.mesh import wait_for

FAST_DEMO = {"MIRROR_DEMO_SECONDS": "0.3"}


def sweep_para(values, name="x", ncpus=None, extra=""):
    """A para.xml with one multistate parameter (and optionally multistate NCPUS)."""
    lines = [f'<Param name="{name}" type="int" multistate="1">{";".join(map(str, values))}</Param>']
    if ncpus is not None:
        lines.append(
            f'<Param name="NCPUS" type="int" multistate="1">{";".join(map(str, ncpus))}</Param>'
        )
    return f"<Para>{''.join(lines)}{extra}</Para>".encode()


def steps_package(mesh, name, steps_xml, result=""):
    adapter = f'<Adapter name="{name}"><Steps>{steps_xml}</Steps>{result}</Adapter>'
    return mesh.add_package(name, make_package(adapter))


def wait_all(mesh, ids, timeout=120):
    def ended():
        jobs = [mesh.ok("job", "query", job_id=j) for j in ids]
        return jobs if all(j["state"] in FINAL for j in jobs) else None

    return wait_for(ended, timeout, interval=0.3, what=f"{len(ids)} jobs to end")


def deliveries_processed(mesh, rid):
    """True once machine ``rid`` has taken every message of its job queue and is idle.

    The queue holds none, ready or unacknowledged, and no job waits or holds
    cores on the agent: no delivery can start a claim or a step any more.
    """
    messages, _ = mesh.queue(job_queue(rid).name)
    status = mesh.ok(f"jobagent_{rid}", "status")
    return messages == 0 and status["used_cores"] == 0 and not status["waiting"]


def consumer_gone(mesh, rid):
    """True once the broker holds no consumer on the job queue of machine ``rid``."""
    return mesh.queue(job_queue(rid).name)[1] == 0


def step_starts(mesh, job_id, step):
    """The events that record ``step`` starting to run (one per run)."""
    events = mesh.ok("job", "events", job_id=job_id)
    return [e for e in events if e["message"] == f"step {step} RUNNING"]
