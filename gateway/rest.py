"""The Slurm-style REST API of SPEC 8, over the central services.

``POST /jobs/submit``, ``GET /jobs/query/<job_id>``, ``POST /jobs/cancel/<job_id>``
and ``GET /health``, with the request and response shapes of the SCNS-Conductor
seeds. Small pure functions turn a request body into ``jobdispatch.submit``
arguments and a ``job.query`` record into the REST answer; the ``handle_*``
functions at the end are the routes :class:`gateway.service.GatewayService` serves.

Every error is JSON ``{"detail": "message"}`` (FastAPI's shape, which the seeds'
service answers with), never HTML and never a traceback.
"""

import json
import logging
import math
import re
import time
from datetime import UTC, datetime

from nameko.exceptions import UnknownService
from werkzeug.wrappers import Response

from .proxy import HttpError, check_token, log_request, read_body, rpc_error
from .web import JSON

log = logging.getLogger(__name__)

CANCELLED_MESSAGE = "取消成功"
DATA_SOURCE = "API"
UNLIMITED = "UNLIMITED"

# Mirror job states -> the five REST states. READY is between steps (or just
# before the results are recovered): the job has not finished, so RUNNING.
STATES = {
    "QUEUED": "PENDING",
    "PREPARING": "RUNNING",
    "READY": "RUNNING",
    "RUNNING": "RUNNING",
    "COMPLETED": "COMPLETED",
    "FAILED": "FAILED",
    "KILLED": "CANCELLED",
}

# Job fields with a meaning of their own; any other key is kept as metadata.
_PATHS = {
    "current_working_directory": "cwd",
    "standard_output": "stdout",
    "standard_error": "stderr",
}
_HANDLED = {"name", "environment", "cpus_per_task", "time_limit", *_PATHS}

# Logs come from the job's machine in chunks; one answer holds at most this much.
LOG_CHUNK = 1024 * 1024
LOG_LIMIT = 4 * LOG_CHUNK
# A machine that went away must not hold a query for the whole RPC timeout.
SIDE_TIMEOUT = 5.0
MAX_JOB_ID = 2**31 - 1

_DURATION = re.compile(r"(?:(\d+)-)?(\d+(?:\.\d+)?)(?::(\d+))?(?::(\d+))?")


# -- requests -> arguments ----------------------------------------------------------------


def bad(message):
    return HttpError(400, message)


def parse_body(data):
    """The JSON object of a request body (400 when it is not one)."""
    if not data.strip():
        raise bad("request body is empty: send a JSON object with 'job' and 'script'")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise bad(f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise bad("request body must be a JSON object with 'job' and 'script'")
    return value


def positive_int(value, field):
    """An int >= 1, from an int or a string of digits."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < 1:
        raise bad(f"{field} must be a positive integer, got {value!r}")
    return number


def optional_str(job, key):
    value = job.get(key)
    if value is not None and not isinstance(value, str):
        raise bad(f"job.{key} must be a string, got {value!r}")
    return value


def parse_time_limit(value):
    """Minutes from a Slurm time limit; None for no limit.

    A number or a string of minutes (``"30"``, ``"1.5"``), or Slurm's forms
    ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``; ``UNLIMITED`` or
    ``INFINITE`` (or null, or ``""``) for none.
    """
    field = "job.time_limit"
    if value is None:
        return None
    if isinstance(value, bool):
        raise bad(f"{field} must be a number of minutes, got {value!r}")
    if isinstance(value, int | float):
        minutes = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or text.upper() in (UNLIMITED, "INFINITE"):
            return None
        match = _DURATION.fullmatch(text)
        if match is None:
            raise bad(f"{field} must be minutes or a Slurm time such as 1:30:00, got {value!r}")
        days, first, second, third = match.groups()
        if "." in first and (days or second):
            raise bad(f"{field} must be minutes or a Slurm time such as 1:30:00, got {value!r}")
        numbers = [int(n) for n in (second, third) if n is not None]
        if days is not None:
            # D-H, D-H:M, D-H:M:S
            hours, minutes_, seconds = int(first), *(numbers + [0, 0])[:2]
            minutes = int(days) * 1440 + hours * 60 + minutes_ + seconds / 60
        elif len(numbers) == 2:
            minutes = int(first) * 60 + numbers[0] + numbers[1] / 60  # H:M:S
        elif len(numbers) == 1:
            minutes = int(first) + numbers[0] / 60  # M:S
        else:
            minutes = float(first)
    else:
        raise bad(f"{field} must be a number of minutes, got {value!r}")
    if not math.isfinite(minutes) or minutes <= 0:
        raise bad(f"{field} must be a positive time, got {value!r}")
    return int(minutes) if minutes == int(minutes) else minutes


def parse_environment(value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad("job.environment must be an object of NAME: value")
    out = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise bad(f"job.environment.{key} must be a string, got {item!r}")
        out[key] = str(item)
    return out


def submit_kwargs(body):
    """``jobdispatch.submit`` keyword arguments from a seed-shaped ``{"job", "script"}``."""
    if "job" not in body:
        raise bad("missing field: job")
    if "script" not in body:
        raise bad("missing field: script")
    job, script = body["job"], body["script"]
    if not isinstance(job, dict):
        raise bad("job must be an object")
    if not isinstance(script, str):
        raise bad(f"script must be a string, got {type(script).__name__}")
    if not script.strip():
        raise bad("script must not be empty")
    kwargs = {
        "script": script,
        "name": optional_str(job, "name") or "",
        "environment": parse_environment(job.get("environment")),
        "ncpus": 1,
        "time_limit": parse_time_limit(job.get("time_limit")),
    }
    if job.get("cpus_per_task") is not None:
        kwargs["ncpus"] = positive_int(job["cpus_per_task"], "job.cpus_per_task")
    for key, arg in _PATHS.items():
        value = optional_str(job, key)
        if value:
            kwargs[arg] = value
    kwargs["metadata"] = job_metadata(job)
    return kwargs


def job_metadata(job):
    """What Mirror keeps but does not act on: account, partition, memory_per_node..."""
    for key in ("account", "partition"):
        optional_str(job, key)
    if job.get("ntasks_per_node") is not None:
        positive_int(job["ntasks_per_node"], "job.ntasks_per_node")
    memory = job.get("memory_per_node")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, str | int)):
        raise bad(f"job.memory_per_node must be a string such as '4G', got {memory!r}")
    exclusive = job.get("exclusive")
    if exclusive is not None and not isinstance(exclusive, bool):
        raise bad(f"job.exclusive must be true or false, got {exclusive!r}")
    meta = {key: value for key, value in job.items() if key not in _HANDLED}
    meta["data_source"] = DATA_SOURCE
    return meta


def parse_job_id(text):
    """The integer of a ``<job_id>`` path part (400 when it is not one)."""
    if not text.isascii() or not text.isdigit():
        raise bad(f"job_id must be a positive integer, got {text!r}")
    return int(text)


# -- job records -> answers --------------------------------------------------------------


def rest_state(job):
    return STATES.get(job.get("state"), "PENDING")


def parse_instant(value):
    if not value:
        return None
    stamp = datetime.fromisoformat(value)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def utc_text(value):
    """ISO 8601 UTC to the second, as the seeds show it: ``2025-11-07T10:20:30Z``."""
    stamp = parse_instant(value)
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else None


def format_elapsed(seconds):
    """Slurm's ``D-HH:MM:SS``: ``0-00:05:20``."""
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def format_limit(minutes):
    """Slurm's time limit display: ``30:00``, ``2:00:00``, ``1-00:00:00``, ``UNLIMITED``."""
    if minutes is None:
        return UNLIMITED
    seconds = max(round(float(minutes) * 60), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{mins:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{mins:02d}:{secs:02d}"
    return f"{mins}:{secs:02d}"


def elapsed_seconds(job, now=None):
    """From the start to the end, or to ``now`` while the job runs; 0 before it starts."""
    start = parse_instant(job.get("start_time"))
    if start is None:
        return 0
    end = parse_instant(job.get("end_time")) or now or datetime.now(UTC)
    return (end - start).total_seconds()


def exit_code(job):
    """Slurm's ``exit:signal`` of the job's step, ``":"`` while there is none."""
    steps = job.get("steps") or []
    step = next((s for s in steps if s["id"] == job.get("step")), steps[-1] if steps else None)
    code = step.get("exit_code") if step else None
    if code is None:
        return ":"
    return f"{code}:0" if code >= 0 else f"0:{-code}"


def job_response(job, logs=None, node="", now=None):
    """The seed's query answer from a ``job.query`` record and its step's logs."""
    meta = job.get("metadata") or {}
    logs = logs or {}
    account = meta.get("account")
    submit = utc_text(job.get("submit_time"))
    return {
        "job_id": str(job["job_id"]),
        "state": rest_state(job),
        "error_msg": job.get("error"),
        "time": {
            "submit_time": submit,
            "start_time": utc_text(job.get("start_time")),
            "end_time": utc_text(job.get("end_time")),
            "eligible_time": submit,
            "elapsed_time": format_elapsed(elapsed_seconds(job, now)),
            "limit_time": format_limit(job.get("time_limit")),
        },
        "job_log": {"stdout": logs.get("stdout", ""), "stderr": logs.get("stderr", "")},
        "detail": {
            "job_name": job.get("name") or job.get("state_name") or "",
            "user": account,
            "partition": meta.get("partition") or "default",
            "allocated_cpus": int(job.get("ncpus") or 1),
            "allocated_nodes": 1,
            "node_list": node,
            "exit_code": exit_code(job),
            "work_dir": job.get("workdir") or job.get("path") or "",
            "data_source": meta.get("data_source") or DATA_SOURCE,
            "account": account,
        },
    }


def health_report(machines=None, error=None):
    """``(http_status, body)`` of ``/health`` from ``machine.list``'s answer or a failure.

    ``error`` is ``("broker", message)`` when central did not answer over RPC,
    ``("database", message)`` when it answered with an error.
    """
    broker = {"ok": True, "error": None}
    database = {"ok": True, "error": None}
    if error is not None:
        where, message = error
        if where == "broker":
            broker = {"ok": False, "error": message}
            database = {"ok": False, "error": "not checked: central services not reached"}
        else:
            database = {"ok": False, "error": message}
    listed = [
        {
            key: m.get(key)
            for key in (
                "rid",
                "name",
                "online",
                "slots",
                "running",
                "used_cores",
                "queued",
                "tags",
                "autorun",
                "last_heartbeat",
            )
        }
        for m in machines or []
    ]
    online = sum(1 for m in listed if m["online"])
    reachable = broker["ok"] and database["ok"]
    body = {
        "status": "ok" if reachable and online else "degraded",
        "service": "mirror-gateway",
        "broker": broker,
        "database": database,
        "machines": {"online": online, "total": len(listed), "list": listed},
    }
    return (200 if reachable else 503), body


# -- talking to the mesh --------------------------------------------------------------------


class RpcFailed(Exception):
    """A ``[-1, message]`` answer."""

    def __init__(self, message):
        super().__init__(message)
        self.message = str(message)


def rpc(services, service, method, kwargs, timeout):
    """The value of a ``[code, value]`` RPC; raises :class:`RpcFailed` or :class:`HttpError`."""
    try:
        code, value = services.call(service, method, kwargs, timeout)
    except UnknownService:
        raise HttpError(503, f"the {service} service is not running") from None
    except Exception as exc:
        raise rpc_error(exc, service, method, timeout) from None
    if code != 0:
        raise RpcFailed(value)
    return value


def failed(exc, status=400):
    """An :class:`HttpError` for a ``[-1, message]`` answer: 404 for a missing job."""
    if exc.message.startswith("job is not existed"):
        return HttpError(404, exc.message)
    if exc.message.startswith("internal error"):
        return HttpError(500, exc.message)
    return HttpError(status, exc.message)


def machine_of(services, rid, timeout):
    """The ``machine.list`` entry of ``rid``, or None."""
    try:
        machines = rpc(services, "machine", "list", {}, timeout)
    except (HttpError, RpcFailed):
        return None
    return next((m for m in machines if m.get("rid") == rid), None)


def read_logs(services, job, timeout):
    """The job's current step output so far; empty when its machine does not answer."""
    out = {"stdout": "", "stderr": ""}
    offsets = {"offset_out": 0, "offset_err": 0}
    service = f"jobagent_{job['rid']}"
    for _ in range(LOG_LIMIT // LOG_CHUNK):
        try:
            code, chunk = services.call(
                service,
                "logs",
                {"job_id": job["job_id"], "max_bytes": LOG_CHUNK, **offsets},
                timeout,
            )
        except Exception as exc:  # noqa: BLE001 - any failure: answer with what we have
            log.info("logs of job %s unavailable: %s", job["job_id"], type(exc).__name__)
            break
        if code != 0:
            break
        out["stdout"] += chunk["stdout"]
        out["stderr"] += chunk["stderr"]
        full = False
        for key in offsets:
            full |= chunk[key] - offsets[key] >= LOG_CHUNK
            offsets[key] = chunk[key]
        if not full:
            break
    return out


def query_job(services, job_id, timeout):
    """The REST answer for ``job_id``: the record, its machine's name and its output."""
    try:
        job = rpc(services, "job", "query", {"job_id": job_id}, timeout)
    except RpcFailed as exc:
        raise failed(exc) from None
    node, logs = "", None
    if job.get("rid") is not None:
        side = min(timeout, SIDE_TIMEOUT)
        machine = machine_of(services, job["rid"], side)
        node = (machine or {}).get("name") or f"rid{job['rid']}"
        # Nothing to read before the job has a directory, nor from a machine that is down.
        if job.get("path") and machine and machine.get("online"):
            logs = read_logs(services, job, side)
    return job_response(job, logs, node)


# -- routes ---------------------------------------------------------------------------------


def json_response(status, payload, headers=None):
    """JSON in UTF-8, non-ASCII text as it is (``{"msg": "取消成功"}``, not ``\\u53d6...``)."""
    try:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate from a client: escape everything
        body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(body, status=status, mimetype=JSON, headers=headers)


def error(exc):
    return json_response(exc.status, {"detail": exc.message}, exc.headers)


def serve(request, settings, methods, action):
    """Token, method, then ``action()``'s ``(status, body)``; every failure as JSON."""
    started = time.monotonic()
    target = request.path
    try:
        check_token(request.headers.get("Authorization"), settings.tokens)
        if request.method not in methods:
            allow = ", ".join(methods)
            raise HttpError(
                405, f"method {request.method} not allowed on {target}", {"Allow": allow}
            )
        status, body = action()
        response = json_response(status, body)
        log_request(request, target, status, started)
    except HttpError as exc:
        response = error(exc)
        log_request(request, target, exc.status, started, exc.message)
    except Exception as exc:  # noqa: BLE001 - a bug must still answer JSON
        log.exception("REST %s %s failed", request.method, target)
        response = error(HttpError(500, f"internal error: {type(exc).__name__}"))
        log_request(request, target, 500, started, type(exc).__name__)
    return response


def handle_submit(request, settings, services):
    def action():
        kwargs = submit_kwargs(parse_body(read_body(request.environ, settings.max_body)))
        try:
            job_id = rpc(services, "jobdispatch", "submit", kwargs, settings.timeout)
        except RpcFailed as exc:
            raise failed(exc) from None
        return 200, {"job_id": str(job_id)}

    return serve(request, settings, ("POST",), action)


def handle_query(request, job_id, settings, services):
    def action():
        number = parse_job_id(job_id)
        if number > MAX_JOB_ID:
            raise HttpError(404, f"job is not existed , job : {number}")
        return 200, query_job(services, number, settings.timeout)

    return serve(request, settings, ("GET", "HEAD"), action)


def handle_cancel(request, job_id, settings, services):
    def action():
        number = parse_job_id(job_id)
        if number > MAX_JOB_ID:
            raise HttpError(404, f"job is not existed , job : {number}")
        try:
            rpc(services, "job", "cancel", {"job_id": number}, settings.timeout)
        except RpcFailed as exc:
            # Cancelling a job that has already finished changes nothing: it succeeds.
            if not exc.message.startswith("job not running"):
                raise failed(exc, 500) from None
        return 200, {"msg": CANCELLED_MESSAGE}

    return serve(request, settings, ("POST",), action)


def handle_health(request, settings, services):
    def action():
        timeout = min(settings.timeout, SIDE_TIMEOUT)
        try:
            code, value = services.call("machine", "list", {}, timeout)
        except UnknownService:
            return health_report(error=("broker", "central services are not running"))
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            message = rpc_error(exc, "machine", "list", timeout).message
            return health_report(error=("broker", message))
        if code != 0:
            return health_report(error=("database", str(value)))
        return health_report(value)

    return serve(request, settings, ("GET", "HEAD"), action)
