"""Script submissions: one-step jobs of the bundled ``script`` package (REST, client)."""

import hashlib
import logging
import math
import os
import re

from sqlalchemy import select

from adapters.adapter import parse_adapter
from adapters.bundled import package_zip
from adapters.params import State
from db.models import CalcPackage, Project
from services.central.retry import retry_disconnects
from services.common.errors import MirrorError

log = logging.getLogger(__name__)

PACKAGE_NAME = "__script__"
PROJECT_NAME = "__submissions__"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_positive_int(value, name):
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
    return out


def check_path(value, name):
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
            )


@retry_disconnects
class Submissions:
    """The hidden project and built-in package that script jobs belong to."""

    def __init__(self, catalog):
        self.catalog = catalog
        self._ids = None

    def ids(self):
        """``(p_id, c_id, adapter)`` of the submissions project and script package."""
        if self._ids is None:
            data = package_zip("script")
            digest = hashlib.sha256(data).hexdigest()
            with self.catalog.Session() as session:
                c_id = session.scalar(
                    select(CalcPackage.id).where(
                        CalcPackage.name == PACKAGE_NAME,
                        CalcPackage.sha256 == digest,
                        CalcPackage.ftp_path != "",
                    )
                )
                p_id = session.scalar(select(Project.id).where(Project.name == PROJECT_NAME))
            adapter_xml = _adapter_text(data)
            adapter = parse_adapter(adapter_xml.encode("utf-8"))
            if c_id is None:
                c_id = self.catalog.new_package(PACKAGE_NAME, data, adapter, adapter_xml)
            if p_id is None:
                p_id = self.catalog.new_project(PROJECT_NAME, "jobs submitted as scripts")
            self._ids = (p_id, c_id, adapter)
        return self._ids


def _adapter_text(data):
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("adapter.xml").decode("utf-8")


def script_state(script, ncpus, time_limit):
    if not isinstance(script, str) or not script.strip():
        raise MirrorError("script must be a non-empty string")
    if "\0" in script:
        raise MirrorError("script contains a NUL byte")
    params = {"SCRIPT": script, "NCPUS": ncpus}
    if time_limit is not None:
        params["TIME_LIMIT"] = time_limit
    return State(index=0, name="script", params=params)
