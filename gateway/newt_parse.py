"""Machine API requests -> Mirror submissions: form or JSON fields, ``jobconf``, the scripts run.

The seed's client posts forms (``application/x-www-form-urlencoded``) with
``jobconf`` as a JSON string; a JSON object body works as well, ``jobconf``
then an object or a string. The query string is read too (``DELETE`` with
``?jobid=``). Every refusal is a :class:`gateway.errors.BadRequest`.

A command or a batch script reaches its machine as a one-step script job of
``jobdispatch.submit`` whose shell script lays out what the call asks on the
machine itself (the caller's directory, the script file) and then runs it:
Mirror has no other way to write a file on a machine.
"""

import json
import posixpath
import secrets
import shlex
import urllib.parse

from .errors import BadRequest, short
from .parsing import coerce_value, parse_time_limit, read_body

# The caller's own directory under a machine's work root: the seed's ``~/newt``.
AREA = "users/{user}/newt"
FORM = "application/x-www-form-urlencoded"

# jobconf key -> what it must be.
_TEXT = ("job_wdir", "job_name", "partition", "jobfile_args")
_COUNTS = ("scale_cores", "scale_Nodes")


def read_fields(request, max_body):
    """Query string and body fields of a request, the body's over the query's."""
    fields = {key: value for key, value in request.args.items(multi=True)}
    data = read_body(request.environ, max_body)
    if not data.strip():
        return fields
    mimetype = request.mimetype or ""
    if mimetype == "application/json" or (mimetype != FORM and data.lstrip()[:1] == b"{"):
        try:
            body = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object or a form")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("a form body must be UTF-8 text") from None
        body = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    fields.update(body)
    return fields


def text_field(fields, name, required=False):
    """``fields[name]`` as text; None when absent or empty (400 when required)."""
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"missing field: {name}")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be text, got {value!r}")
    return value


def job_id_of(value, what="jobid"):
    """A job id from a path part or a field: digits only."""
    text = str(value if value is not None else "").strip()
    if not text:
        raise BadRequest(f"missing field: {what}")
    if not text.isascii() or not text.isdigit():
        raise BadRequest(short(f"{what} must be a job id (digits), got {value!r}"))
    return int(text)


def parse_jobconf(value):
    """``jobconf`` (a JSON string, an object, or nothing) as a checked dict."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"jobconf is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("jobconf must be a JSON object")
    conf = {}
    for key in _TEXT:
        item = value.get(key)
        if item is None or item == "":
            continue
        if key == "jobfile_args" and isinstance(item, list):
            item = " ".join(shlex.quote(str(part)) for part in item)
        if not isinstance(item, str):
            raise BadRequest(f"jobconf.{key} must be text, got {item!r}")
        conf[key] = item
    for key in _COUNTS:
        if value.get(key) not in (None, ""):
            conf[key] = count(value[key], f"jobconf.{key}")
    if value.get("scale_memGB") not in (None, ""):
        memory = value["scale_memGB"]
        if isinstance(memory, str):
            memory = coerce_value(memory.strip())
        if isinstance(memory, bool) or not isinstance(memory, int | float) or memory <= 0:
            raise BadRequest(f"jobconf.scale_memGB must be a positive number, got {memory!r}")
        conf["scale_memGB"] = memory
    if value.get("time_limit") not in (None, ""):
        try:
            conf["time_limit"] = parse_time_limit(value["time_limit"])
        except BadRequest as exc:
            raise BadRequest(exc.message.replace("job.time_limit", "jobconf.time_limit")) from None
    return conf


def count(value, field):
    """A positive integer from a number or its text."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{field} must be a positive integer, got {value!r}")
    return value


def area_of(machine, user):
    """The caller's directory on ``machine``: ``<work root>/users/<user>/newt``."""
    roots = machine.get("roots") or []
    if not roots:
        raise BadRequest(f"machine {machine['name']} has not told its work root yet; try again")
    return posixpath.join(roots[0], AREA.format(user=user))


def machine_path(path, base, roots, field):
    """``path`` (relative to ``base``) made absolute; 400 unless inside the machine's ``roots``."""
    if "\0" in path:
        raise BadRequest(f"{field} contains a NUL byte")
    full = posixpath.normpath(posixpath.join(base, path))
    for root in roots:
        root = posixpath.normpath(root)
        if full == root or full.startswith(root.rstrip("/") + "/"):
            return full
    raise BadRequest(
        short(f"{field} {path!r} is outside the allowed roots of machine: {', '.join(roots)}")
    )


def enter(directory):
    """Shell lines that create ``directory`` and go into it, or end the script with 125."""
    where = shlex.quote(directory)
    return f"mkdir -p -- {where} && cd -- {where} || exit 125\n"


def command_script(command, area):
    """The script of ``POST /api/command``: ``command`` run in the caller's directory."""
    if "\0" in command:
        raise BadRequest("command contains a NUL byte")
    return enter(area) + command + "\n"


def heredoc(path, text):
    """Shell lines that write ``text`` to ``path`` exactly (a delimiter the text lacks)."""
    while True:
        mark = f"MIRROR_NEWT_{secrets.token_hex(8)}"
        if mark not in text:
            break
    body = text if text.endswith("\n") else text + "\n"
    # A here-document always ends its text with a newline: keep a text without one exact.
    trim = "" if text.endswith("\n") else f"truncate -s -1 -- {shlex.quote(path)}\n"
    return f"cat > {shlex.quote(path)} <<'{mark}'\n{body}{mark}\n{trim}"


def batch_script(conf, script_path, text=None, wdir=None):
    """The script of ``POST /api/job``: write ``text`` to ``script_path`` when given, then run it.

    It runs in ``wdir`` when given (Mirror's working directory of the job),
    else in the script's own directory, with ``jobconf.jobfile_args`` as its
    arguments. A script starting with ``#!`` is executed; any other is read by
    ``/bin/sh``.
    """
    path = shlex.quote(script_path)
    lines = []
    if text is not None:
        if "\0" in text:
            raise BadRequest("jobscript contains a NUL byte")
        lines.append(enter(posixpath.dirname(script_path)))
        lines.append(heredoc(script_path, text))
        lines.append(f"chmod 700 -- {path} || exit 125\n")
    if wdir is None:
        lines.append(f"cd -- {shlex.quote(posixpath.dirname(script_path))} || exit 125\n")
    args = conf.get("jobfile_args")
    args = f" {args}" if args else ""
    lines.append(
        f"if [ \"$(head -c 2 -- {path})\" = '#!' ] && [ -x {path} ]; "
        f"then exec {path}{args}; else exec /bin/sh {path}{args}; fi\n"
    )
    return "".join(lines)


def job_name(conf, script_path):
    """``jobconf.job_name``, else the script's file name (as Slurm names a batch job)."""
    return conf.get("job_name") or posixpath.basename(script_path)


def job_metadata(conf, script_path):
    """What the job keeps of its ``jobconf``: shown by the queue and query calls."""
    meta = {"newt": True, "jobfile": script_path}
    for key in ("partition", "scale_memGB", "scale_Nodes", "jobfile_args"):
        if key in conf:
            meta[key] = conf[key]
    return meta
