"""Requests -> call arguments: bodies, query strings, ``/proxy`` targets, job ids, job bodies.

Every refusal raises :class:`gateway.errors.BadRequest` (or
:class:`~gateway.errors.BodyTooLarge`) with the message the client sees.

A REST job body is checked here only where the check belongs to the REST
shape: the JSON structure, Slurm's time notation, the fields Mirror stores
without acting on them, and messages that name the REST field
(``job.cpus_per_task``) where central's name its own argument (``ncpus``).
What central alone checks in ``jobdispatch.submit`` (environment variable
names, NUL bytes, absolute paths and the allowed roots) is left to it, and its
message is the one the client sees.
"""

import json
import math
import re

from .errors import BadRequest, BodyTooLarge, short
from .formatting import DATA_SOURCE, UNLIMITED

_INT = re.compile(r"-?[0-9]+")
_SERVICE = re.compile(r"[A-Za-z0-9_]+")
_DURATION = re.compile(r"(?:(\d+)-)?(\d+(?:\.\d+)?)(?::(\d+))?(?::(\d+))?")

# Job fields with a meaning of their own; any other key is kept as metadata.
_PATHS = {
    "current_working_directory": "cwd",
    "standard_output": "stdout",
    "standard_error": "stderr",
}
_HANDLED = {"name", "environment", "cpus_per_task", "time_limit", *_PATHS}


# -- bodies ------------------------------------------------------------------------------


def read_body(environ, max_body):
    """The request body, at most ``max_body`` bytes (413 beyond)."""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.strip().isdigit() and int(length) > max_body:
        raise BodyTooLarge(f"request body larger than {max_body} bytes")
    stream = environ.get("wsgi.input")
    # Read through the server's own stream: it also decodes a chunked body,
    # which werkzeug's request.stream would present as empty.
    data = stream.read(max_body + 1) if stream is not None else b""
    if len(data) > max_body:
        raise BodyTooLarge(f"request body larger than {max_body} bytes")
    return data


def _json_object(data, what):
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"request body must be a JSON object {what}")
    return value


def json_kwargs(data):
    """Keyword arguments from a ``/proxy`` JSON object body (an empty body is no arguments)."""
    if not data.strip():
        return {}
    return _json_object(data, "of keyword arguments")


def parse_body(data):
    """The JSON object of a REST request body (400 when it is not one)."""
    if not data.strip():
        raise BadRequest("request body is empty: send a JSON object with 'job' and 'script'")
    return _json_object(data, "with 'job' and 'script'")


# -- paths and query strings ---------------------------------------------------------------


def parse_target(target):
    """``"jobrun_5-do"`` -> ``("jobrun_5", "do")``, split at the first ``-``."""
    service, sep, method = target.partition("-")
    if not sep or not _SERVICE.fullmatch(service) or not method.isidentifier():
        raise BadRequest(short(f"malformed target {target!r}: use /proxy/<service>-<method>"))
    return service, method


def coerce_value(text):
    """Digits with an optional leading ``-`` become an int (``"05"`` -> 5); the rest stay strings."""
    if _INT.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # beyond Python's int-from-string digit limit
            pass
    return text


def query_kwargs(args):
    """Keyword arguments from a werkzeug ``MultiDict``; a repeated key keeps its last value."""
    return {key: coerce_value(value) for key, value in args.items(multi=True)}


def parse_job_id(text):
    """The integer of a ``<job_id>`` path part (400 when it is not one)."""
    if not text.isascii() or not text.isdigit():
        raise BadRequest(f"job_id must be a positive integer, got {text!r}")
    return int(text)


# -- a REST job body -> jobdispatch.submit arguments ---------------------------------------


def positive_int(value, field):
    """An int >= 1, from an int or a string of digits."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < 1:
        raise BadRequest(f"{field} must be a positive integer, got {value!r}")
    return number


def optional_str(job, key):
    value = job.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"job.{key} must be a string, got {value!r}")
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
        raise BadRequest(f"{field} must be a number of minutes, got {value!r}")
    if isinstance(value, int | float):
        minutes = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or text.upper() in (UNLIMITED, "INFINITE"):
            return None
        match = _DURATION.fullmatch(text)
        if match is None:
            raise BadRequest(
                f"{field} must be minutes or a Slurm time such as 1:30:00, got {value!r}"
            )
        minutes = _slurm_minutes(*match.groups(), value)
    else:
        raise BadRequest(f"{field} must be a number of minutes, got {value!r}")
    if not math.isfinite(minutes) or minutes <= 0:
        raise BadRequest(f"{field} must be a positive time, got {value!r}")
    return int(minutes) if minutes == int(minutes) else minutes


def _slurm_minutes(days, first, second, third, value):
    """Minutes from the parts of a ``_DURATION`` match."""
    if "." in first and (days or second):
        raise BadRequest(
            f"job.time_limit must be minutes or a Slurm time such as 1:30:00, got {value!r}"
        )
    numbers = [int(n) for n in (second, third) if n is not None]
    if days is not None:
        # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = int(first), *(numbers + [0, 0])[:2]
        return int(days) * 1440 + hours * 60 + minutes + seconds / 60
    if len(numbers) == 2:
        return int(first) * 60 + numbers[0] + numbers[1] / 60  # H:M:S
    if len(numbers) == 1:
        return int(first) + numbers[0] / 60  # M:S
    return float(first)


def check_environment(value):
    """``job.environment`` as it is once its values are known to be text or numbers.

    Central turns the numbers into strings and checks the variable names.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("job.environment must be an object of NAME: value")
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise BadRequest(f"job.environment.{key} must be a string, got {item!r}")
    return value


def submit_kwargs(body):
    """``jobdispatch.submit`` keyword arguments from a seed-shaped ``{"job", "script"}``."""
    if "job" not in body:
        raise BadRequest("missing field: job")
    if "script" not in body:
        raise BadRequest("missing field: script")
    job, script = body["job"], body["script"]
    if not isinstance(job, dict):
        raise BadRequest("job must be an object")
    if not isinstance(script, str):
        raise BadRequest(f"script must be a string, got {type(script).__name__}")
    if not script.strip():
        raise BadRequest("script must not be empty")
    kwargs = {
        "script": script,
        "name": optional_str(job, "name") or "",
        "environment": check_environment(job.get("environment")),
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
        raise BadRequest(f"job.memory_per_node must be a string such as '4G', got {memory!r}")
    exclusive = job.get("exclusive")
    if exclusive is not None and not isinstance(exclusive, bool):
        raise BadRequest(f"job.exclusive must be true or false, got {exclusive!r}")
    meta = {key: value for key, value in job.items() if key not in _HANDLED}
    meta["data_source"] = DATA_SOURCE
    return meta
