"""The machine API of seed 004 (``/api/...``, docs/newt.md): login, commands, batch jobs, queues.

Every answer is the seed's envelope (:data:`gateway.newt_format.NEWT`). A
``<machine>`` is a resource machine's name or rid; a command or a batch job
runs there as a one-step script job of ``jobdispatch.submit`` owned by the
caller, so it is an ordinary Mirror job to every other front door as well.
The caller is a session of ``POST /api/auth`` or a bearer token
(:class:`gateway.sessions.SessionDoor`).
"""

import logging
import secrets
import time
from dataclasses import dataclass

from nameko.extensions import DependencyProvider

from services.common.errors import job_missing
from services.common.jobstates import ACTIVE, COMPLETED, FINAL, QUEUED

from . import mesh
from .errors import (
    BadRequest,
    GatewayError,
    JobNotFound,
    JobNotRunning,
    NoAnswer,
    NotFound,
    Unauthorized,
)
from .newt_format import NEWT, job_columns, overview, queue_columns, shown_id
from .newt_parse import (
    area_of,
    batch_script,
    command_script,
    job_id_of,
    job_metadata,
    job_name,
    machine_path,
    parse_jobconf,
    read_fields,
    text_field,
)
from .newt_slurm import is_slurm, mirror_id, wait_slurm_id
from .routes import serve
from .sessions import COOKIE, login, session_ttl
from .settings import section

log = logging.getLogger(__name__)

DEFAULT_COMMAND_TIMEOUT = 60.0
# Polling a command's job: first after this many seconds, growing to POLL_MAX.
POLL_FIRST = 0.1
POLL_MAX = 1.0
# The most of a command's output answered, per stream.
OUTPUT_BYTES = 1024 * 1024
UNFINISHED = ",".join([QUEUED, *sorted(ACTIVE)])
QUEUE_LIMIT = 1000


@dataclass(frozen=True)
class NewtSettings:
    command_timeout: float
    session_ttl: float


class NewtConfig(DependencyProvider):
    """``GATEWAY.command_timeout`` (seconds a command may run, default 60), read once."""

    def setup(self):
        gw = section(self.container.config)
        try:
            timeout = float(gw.get("command_timeout", DEFAULT_COMMAND_TIMEOUT))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"GATEWAY.command_timeout must be seconds: {exc}") from exc
        if timeout <= 0:
            raise ValueError("GATEWAY.command_timeout must be positive")
        self.settings = NewtSettings(timeout, session_ttl(self.container.config))

    def get_dependency(self, worker_ctx):
        return self.settings


class Anyone:
    """A door that answers None instead of 401: ``/api/auth`` serves callers not logged in."""

    def __init__(self, door):
        self.door = door

    def admit(self, authorization, services):
        try:
            return self.door.admit(authorization, services)
        except Unauthorized:
            return None


def whoami(identity):
    if identity is None:
        return {"auth": False, "username": None, "admin": False}
    return {"auth": True, "username": identity.name, "admin": identity.admin}


def handle_auth(request, settings, services, door, newt):
    """``POST`` logs in (session cookie), ``GET`` says who is logged in, ``DELETE`` logs out."""
    opened = {}

    def action(identity):
        if request.method == "POST":
            fields = read_fields(request, settings.max_body)
            name = text_field(fields, "username", required=True)
            password = text_field(fields, "password", required=True)
            identity = login(services, name, password)
            opened["sid"] = door.start(identity)
            log.info("User<%s> logged in to the machine API", identity.name)
        elif request.method == "DELETE":
            door.end()
            opened["end"] = True
            identity = None
        return 200, whoami(identity)

    methods = ("GET", "HEAD", "POST", "DELETE")
    response = serve(request, settings, services, Anyone(door), action, NEWT, methods)
    if "sid" in opened:
        response.set_cookie(
            COOKIE,
            opened["sid"],
            max_age=int(newt.session_ttl),
            path="/",
            httponly=True,
            samesite="Lax",
            secure=request.scheme == "https",
        )
    elif "end" in opened:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax")
    return response


def find_machine(services, name, timeout):
    """The ``machine.list`` entry named ``name`` (or whose rid it is); 404 when none."""
    machines = mesh.ask(services, "machine", "list", {}, timeout)
    found = next((m for m in machines if m.get("name") == name), None)
    if found is None and name.isascii() and name.isdigit():
        found = next((m for m in machines if m.get("rid") == int(name)), None)
    if found is None:
        raise NotFound(f"unknown machine: {name}")
    return found


def job_on(services, machine, job_id, timeout):
    """The caller's job ``job_id`` on ``machine``; any other answers as missing (404).

    On a Slurm machine ``job_id`` is Slurm's (`newt_slurm.mirror_id`).
    """
    if job_id > mesh.MAX_JOB_ID:
        raise JobNotFound(str(job_missing(job_id)))
    shown = job_id
    if is_slurm(machine):
        job_id = mirror_id(services, machine, job_id, timeout)
    job = mesh.ask(services, "job", "query", {"job_id": job_id}, timeout)
    if is_slurm(machine) and shown_id(job) != str(shown):
        raise JobNotFound(str(job_missing(shown)))
    if job.get("rid") != machine["rid"]:
        raise JobNotFound(str(job_missing(job_id)))
    return job


def handle_command(request, machine, settings, services, door, newt):
    """``POST /api/command/<machine>``: run ``command``; its output, exit code and errors."""

    def action(identity):
        fields = read_fields(request, settings.max_body)
        command = text_field(fields, "command", required=True)
        found = find_machine(services, machine, settings.timeout)
        script = command_script(command, area_of(found, identity.name))
        kwargs = {
            "script": script,
            "name": "newt-command",
            "time_limit": newt.command_timeout / 60,
            "rid": found["rid"],
            "metadata": {"newt": True, "command": command[:200]},
        }
        job_id = mesh.submit_job(services, kwargs, settings.timeout)
        log.info("Job<%s> runs a command of %s on %s", job_id, identity.name, found["name"])
        job = wait_final(services, job_id, newt.command_timeout + settings.timeout, settings)
        return 200, command_result(services, job, settings.timeout)

    return serve(request, settings, services, door, action, NEWT, ("POST",))


def wait_final(services, job_id, seconds, settings):
    """``job.query`` of ``job_id`` once it has ended; cancelled and 504 after ``seconds``."""
    deadline = time.monotonic() + seconds
    pause = POLL_FIRST
    while True:
        job = mesh.ask(services, "job", "query", {"job_id": job_id}, settings.timeout)
        if job["state"] in FINAL:
            return job
        if time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(pause * 1.5, POLL_MAX)
    try:
        mesh.cancel_job(services, job_id, settings.timeout)
    except GatewayError as exc:
        log.warning("Job<%s> could not be cancelled: %s", job_id, exc.message)
    raise NoAnswer(f"the command did not end within {seconds:g} s; job {job_id} was cancelled")


def command_result(services, job, timeout):
    """``{"output", "retcode", "error"}`` of a command's ended job."""
    try:
        logs = mesh.ask(
            services, "job", "logs", {"job_id": job["job_id"], "max_bytes": OUTPUT_BYTES}, timeout
        )
    except GatewayError as exc:
        log.info("Job<%s> output unavailable: %s", job["job_id"], exc.message)
        logs = {"stdout": "", "stderr": ""}
    step = next(iter(job.get("steps") or []), {})
    code = step.get("exit_code")
    error = logs.get("stderr", "")
    if code is None or code < 0:
        # Killed (time limit, cancel) or never started: the job's error says why.
        if job["state"] != COMPLETED and job.get("error"):
            error += job["error"] + "\n"
    retcode = code if code is not None and code >= 0 else (128 - code if code else -1)
    return {"output": logs.get("stdout", ""), "retcode": retcode, "error": error}


def handle_jobs(request, machine, settings, services, door):
    """``/api/job/<machine>``: ``POST`` submits, ``GET`` lists the caller's queue, ``DELETE`` kills."""

    def action(identity):
        found = find_machine(services, machine, settings.timeout)
        if request.method == "POST":
            return 200, submit(request, found, identity, settings, services)
        if request.method == "DELETE":
            fields = read_fields(request, settings.max_body)
            return 200, kill(services, found, job_id_of(fields.get("jobid")), settings)
        return 200, my_queue(services, found, identity, settings.timeout)

    return serve(request, settings, services, door, action, NEWT, ("GET", "HEAD", "POST", "DELETE"))


def handle_job(request, machine, jobid, settings, services, door):
    """``/api/job/<machine>/<jobid>``: ``GET`` one job's columns, ``DELETE`` kills it."""

    def action(identity):
        job_id = job_id_of(jobid)
        found = find_machine(services, machine, settings.timeout)
        if request.method == "DELETE":
            return 200, kill(services, found, job_id, settings)
        return 200, job_columns(job_on(services, found, job_id, settings.timeout))

    return serve(request, settings, services, door, action, NEWT, ("GET", "HEAD", "DELETE"))


def handle_overview(request, settings, services, door):
    """``GET /api/job``: every machine's queue and cores, from central alone."""

    def action(identity):
        machines = mesh.ask(services, "machine", "list", {}, settings.timeout)
        return 200, overview(machines, stalled_counts(services, machines, settings.timeout))

    return serve(request, settings, services, door, action, NEWT, ("GET", "HEAD"))


def stalled_counts(services, machines, timeout):
    """``{rid: stalled jobs}`` from central's ``machine.ruok`` of the online machines running jobs."""
    out = {}
    side = min(timeout, mesh.SIDE_TIMEOUT)
    for machine in machines:
        if not machine.get("online") or not machine.get("running"):
            continue
        try:
            health = mesh.ask(services, "machine", "ruok", {"rid": machine["rid"]}, side)
        except GatewayError:
            continue
        out[machine["rid"]] = len(health.get("stalled_jobs") or [])
    return out


def submit(request, machine, identity, settings, services):
    """``{"jobid": "<id>"}`` of a batch job: ``jobscript`` (+ ``jobfilepath``) or ``jobfile``."""
    fields = read_fields(request, settings.max_body)
    text = text_field(fields, "jobscript")
    jobfile = text_field(fields, "jobfile")
    if (text is None) == (jobfile is None):
        raise BadRequest("send either jobscript (with an optional jobfilepath) or jobfile")
    conf = parse_jobconf(fields.get("jobconf"))
    area, roots = area_of(machine, identity.name), machine.get("roots") or []
    if text is not None:
        given = text_field(fields, "jobfilepath") or f"newt_{secrets.token_hex(4)}.sh"
        path = machine_path(given, area, roots, "jobfilepath")
    else:
        path = machine_path(jobfile, area, roots, "jobfile")
    wdir = conf.get("job_wdir")
    if wdir is not None:
        wdir = machine_path(wdir, area, roots, "jobconf.job_wdir")
    kwargs = {
        "script": batch_script(conf, path, text, wdir),
        "name": job_name(conf, path),
        "ncpus": conf.get("scale_cores", 1),
        "time_limit": conf.get("time_limit"),
        "rid": machine["rid"],
        "cwd": wdir,
        "metadata": job_metadata(conf, path),
    }
    job_id = mesh.submit_job(services, kwargs, settings.timeout)
    log.info("Job<%s> submitted by %s on %s: %s", job_id, identity.name, machine["name"], path)
    if is_slurm(machine):
        return {"jobid": wait_slurm_id(services, job_id, settings)}
    return {"jobid": str(job_id)}


def my_queue(services, machine, identity, timeout):
    """The caller's unfinished jobs on ``machine``, column-wise."""
    kwargs = {"rid": machine["rid"], "state": UNFINISHED, "limit": QUEUE_LIMIT}
    listed = mesh.ask(services, "job", "list", kwargs, timeout)
    jobs = []
    for summary in listed:
        if summary.get("owner") != identity.name:
            continue
        try:
            jobs.append(mesh.ask(services, "job", "query", {"job_id": summary["job_id"]}, timeout))
        except JobNotFound:
            continue  # deleted since it was listed
    return queue_columns(reversed(jobs), machine["name"])


def kill(services, machine, job_id, settings):
    """Cancel the caller's job on ``machine``; one that has ended already succeeds as well."""
    job_id = job_on(services, machine, job_id, settings.timeout)["job_id"]
    try:
        mesh.cancel_job(services, job_id, settings.timeout)
    except JobNotRunning:
        pass  # as the REST cancel: killing an ended job changes nothing
    return ""
