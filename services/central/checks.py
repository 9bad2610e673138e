"""Checks of the arguments central services receive: each refuses with a MirrorError naming the field."""

import base64
import binascii
import math
import os
import posixpath
import re

from adapters.params import State
from adapters.paths import confine
from services.common.envnames import check_submitted
from services.common.errors import MirrorError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The setting that lists where submitted scripts may run and write.
ROOTS_SETTING = "AGENT.allowed_roots"


def decode(content, what):
    """Decode base64 ``content`` or refuse it naming ``what``."""
    if isinstance(content, bytes):
        return content
    if not isinstance(content, str):
        raise MirrorError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MirrorError(f"{what} is not valid base64: {exc}") from exc


def check_file_name(name):
    """A project file name is a relative path that stays inside the project."""
    if not isinstance(name, str) or not name.strip():
        raise MirrorError("file name must be a non-empty string")
    name = name.strip()
    confine("/project", name, "project file name")
    # One spelling per file: "./a//b" and "a/b" name the same file.
    return posixpath.normpath(name)


def split_tags(tags):
    """Machine tags given as a comma-separated string or a list, without empty ones."""
    return [t for t in (tags.split(",") if isinstance(tags, str) else tags or []) if t]


def check_positive_int(value, name):
    """``value`` as an integer of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MirrorError(f"{name} must be a positive integer, got {value!r}")
    try:
        number = int(value)
    except ValueError as exc:
        raise MirrorError(f"{name} must be a positive integer, got {value!r}") from exc
    if number < 1:
        raise MirrorError(f"{name} must be a positive integer, got {value!r}")
    return number


def check_minutes(value):
    """A time limit in minutes: a positive number, or None for no limit."""
    if value is None or value == "":
        return None
    try:
        minutes = float(value)
    except (TypeError, ValueError) as exc:
        raise MirrorError(f"time_limit must be a number of minutes, got {value!r}") from exc
    if not math.isfinite(minutes) or minutes <= 0:
        raise MirrorError(f"time_limit must be a positive number of minutes, got {value!r}")
    return minutes


def check_environment(environment):
    """Environment variables as ``{NAME: text}``."""
    if environment is None:
        return {}
    if not isinstance(environment, dict):
        raise MirrorError("environment must be an object of NAME: value")
    out = {}
    for key, value in environment.items():
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            raise MirrorError(f"environment variable name {key!r} is not valid")
        if isinstance(value, dict | list) or value is None:
            raise MirrorError(f"environment variable {key} must be a string, got {value!r}")
        text = str(value)
        if "\0" in text:
            raise MirrorError(f"environment variable {key} contains a NUL byte")
        out[key] = text
    check_submitted(out)
    return out


def check_path(value, name):
    """A path as text, or None when not given."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "\0" in value:
        raise MirrorError(f"{name} must be a path, got {value!r}")
    return value


def inside_roots(path, roots):
    """Whether the normalised absolute ``path`` lies inside one of ``roots``."""
    path = os.path.normpath(path)
    for root in roots:
        root = os.path.normpath(root)
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return True
    return False


def check_against_roots(workdir, stdout, stderr, roots, rid):
    """Refuse a working directory or output path outside the machine's allowed roots."""
    if workdir is not None and not os.path.isabs(workdir):
        raise MirrorError(f"current_working_directory must be an absolute path, got {workdir!r}")
    if roots is None:
        # The machine is not known yet: its agent checks when the job starts.
        return
    base = workdir
    for name, value in (
        ("current_working_directory", workdir),
        ("standard_output", stdout),
        ("standard_error", stderr),
    ):
        if value is None:
            continue
        full = value if os.path.isabs(value) else os.path.join(base or "", value)
        if not os.path.isabs(full):
            # Relative to the job directory, which is always allowed.
            continue
        if not inside_roots(full, roots):
            raise MirrorError(
                f"{name} {value!r} is outside the allowed roots of resource machine {rid}: "
                + (", ".join(roots) or "none")
                + f"; {ROOTS_SETTING} in the configuration of that machine's agent opens a directory"
            )


def script_state(script, ncpus, time_limit):
    """The one parameter state of a script job."""
    if not isinstance(script, str) or not script.strip():
        raise MirrorError("script must be a non-empty string")
    if "\0" in script:
        raise MirrorError("script contains a NUL byte")
    params = {"SCRIPT": script, "NCPUS": ncpus}
    if time_limit is not None:
        params["TIME_LIMIT"] = time_limit
    return State(index=0, name="script", params=params)
