"""File generation: apply an adapter's ``File`` and ``ParaFile`` rules to a job directory."""

import os
import pathlib
import shutil
import tempfile

from adapters.adapter import Adapter, DataItem, FileRule, ParaFileRule, Step
from adapters.errors import AdapterError, where_of
from adapters.paths import confine, within
from adapters.safezip import extract_zip
from adapters.substitute import render_template, substitute

PROJECT_DIR = "the project directory"


def _path(root, text: str, params: dict, where: str, root_name: str = "the job directory"):
    """Substitute ``text`` and confine the result under ``root``."""
    return confine(root, substitute(text, params, where), where, root_name=root_name)


def write_atomically(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def apply_file_rule(rule: FileRule, params: dict, job_dir, project_dir, adapter_file: str):
    """Copy (or unzip) one project file into the job directory; returns the target."""
    source = _path(
        project_dir,
        rule.name,
        params,
        where_of(adapter_file, rule.line, "attribute name"),
        PROJECT_DIR,
    )
    target = _path(
        job_dir, rule.target, params, where_of(adapter_file, rule.line, "attribute target")
    )
    if not source.is_file():
        raise AdapterError(adapter_file, rule.line, f"project file {source.name!r} does not exist")
    parent = target if rule.unzip else target.parent
    if not parent.is_dir():
        if not rule.create:
            raise AdapterError(
                adapter_file,
                rule.line,
                f"directory {os.path.relpath(parent, job_dir)!r} does not exist "
                '(create="1" creates it)',
            )
        parent.mkdir(parents=True, exist_ok=True)
    if rule.unzip:
        extract_zip(source, target, name=source.name)
    else:
        if target.is_dir():
            # like cp: into an existing directory, where a step may have left a link
            target = within(
                job_dir, target / source.name, where_of(adapter_file, rule.line, "attribute target")
            )
        copy_file(source, target)
    return target


def copy_file(source: pathlib.Path, target: pathlib.Path) -> None:
    """Copy ``source`` to ``target`` following no link at either end.

    Both paths are confined, so a link there now was put there since: refuse it
    rather than read or write through it.
    """
    with open(source, "rb", opener=_no_follow(os.O_RDONLY)) as src:
        with open(target, "wb", opener=_no_follow(os.O_WRONLY | os.O_CREAT | os.O_TRUNC)) as out:
            shutil.copyfileobj(src, out)


def _no_follow(flags: int):
    def opener(path, _flags):
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)

    return opener


def apply_parafile_rule(rule: ParaFileRule, params: dict, job_dir, adapter_file: str):
    """Render one template with the job's parameters; returns the written path."""
    source = _path(
        job_dir, rule.source, params, where_of(adapter_file, rule.line, "attribute source")
    )
    target = (
        source
        if rule.target is None
        else _path(
            job_dir, rule.target, params, where_of(adapter_file, rule.line, "attribute target")
        )
    )
    try:
        with open(source, "rb", opener=_no_follow(os.O_RDONLY)) as src:
            raw = src.read()
    except OSError as exc:
        raise AdapterError(
            adapter_file,
            rule.line,
            f"ParaFile source {rule.source!r} cannot be read: {exc.strerror}",
        ) from exc
    # surrogateescape: bytes that are not UTF-8 pass through untouched.
    text = raw.decode("utf-8", errors="surrogateescape")
    name = os.path.relpath(source, job_dir)
    rendered = render_template(text, params, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, rendered.encode("utf-8", errors="surrogateescape"))
    return target


def generate_files(
    adapter: Adapter, params: dict, job_dir, project_dir, adapter_file: str = "adapter.xml"
) -> list[pathlib.Path]:
    """Apply every File rule, then every ParaFile rule; return the paths written."""
    written = [
        apply_file_rule(rule, params, job_dir, project_dir, adapter_file) for rule in adapter.files
    ]
    written += [
        apply_parafile_rule(rule, params, job_dir, adapter_file) for rule in adapter.parafiles
    ]
    return written


def step_workdir(step: Step, params: dict, job_dir, adapter_file: str = "adapter.xml"):
    """The step's working directory under the job directory, created if missing."""
    where = where_of(adapter_file, step.line, f"attribute workpath of step {step.id!r}")
    workdir = _path(job_dir, step.workpath, params, where)
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def data_path(item: DataItem, params: dict, job_dir, adapter_file: str = "adapter.xml"):
    """Where a Process / Result Data item (or the Progress file) lives."""
    where = where_of(adapter_file, item.line, f"attribute path of Data {item.key!r}")
    return _path(job_dir, item.path, params, where)
