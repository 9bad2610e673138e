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


def para(**params):
    """A para.xml whose list values are multistate parameters (zipped into states)."""
    out = []
    for name, value in params.items():
        if isinstance(value, list | tuple | range):
            text = ";".join(map(str, value))
            out.append(f'<Param name="{name}" type="str" multistate="1">{text}</Param>')
        else:
            out.append(f'<Param name="{name}" type="str">{value}</Param>')
    return f"<Para>{''.join(out)}</Para>".encode()


def shell_package(mesh, name, command):
    value = command.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = value.replace('"', "&quot;")
    return steps_package(
        mesh, name, f'<ExeArgument id="s" type="shell" value="{value}" priority="1"/>'
    )


def dispatch(mesh, name, command, rid=None, **params):
    """Dispatch a one-step shell package over ``params``; answer ``(sweep_id, job ids)``.

    ``rid`` pins the jobs to that machine.
    """
    c_id = shell_package(mesh, name, command)
    p_id = mesh.add_project(name, {"para.xml": para(**params)})
    ids = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=rid)
    sweep_id = mesh.ok("job", "query", job_id=ids[0])["sweep_id"]
    return sweep_id, ids


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
