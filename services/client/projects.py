"""The project methods of the Python client (``Mirror`` inherits them), and upload encoding."""

import base64
import io
import zipfile
from pathlib import Path

from services.client.connection import MirrorError


def _encode(data):
    """Bytes or text as the base64 text an upload's ``content`` takes."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(bytes(data)).decode("ascii")


def zip_directory(directory):
    """The zip (bytes) of every file under ``directory``, with relative names.

    Python's caches (``__pycache__``, ``*.pyc``) are left out.
    """
    directory = Path(directory)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory)
            if "__pycache__" in rel.parts or path.suffix == ".pyc":
                continue
            if path.is_file():
                archive.write(path, rel.as_posix())
    return buffer.getvalue()


class ProjectMethods:
    """One method per call of the ``project`` service; the host provides ``call``."""

    def new_project(self, name, description=""):
        """Create a project; return its ``p_id``."""
        return self.call("project", "new", name=name, description=description)

    def upload(self, p_id, name, content):
        """Store ``content`` (bytes, or text as UTF-8) as file ``name`` of project ``p_id``."""
        self.call("project", "upload", p_id=p_id, name=name, content=_encode(content))

    def upload_dir(self, p_id, directory):
        """Upload every file under ``directory`` (recursively, relative names); return the names."""
        directory = Path(directory)
        if not directory.is_dir():
            raise MirrorError(f"{directory} is not a directory", "project", "upload")
        names = []
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                name = path.relative_to(directory).as_posix()
                self.upload(p_id, name, path.read_bytes())
                names.append(name)
        return names

    def upload_files(self, p_id, paths):
        """Add or replace files of project ``p_id``; return the names stored, in order.

        A file is stored under its own name; a directory gives every file under
        it, named relative to that directory. Every path is read before the
        first upload, so a missing one or two files of one name upload nothing.
        """
        planned = {}
        for path in map(Path, paths):
            if path.is_dir():
                found = [(f.relative_to(path).as_posix(), f) for f in sorted(path.rglob("*"))]
            elif path.is_file():
                found = [(path.name, path)]
            else:
                raise MirrorError(f"{path}: no such file or directory", "project", "upload")
            for name, file in found:
                if not file.is_file():
                    continue
                if name in planned:
                    raise MirrorError(
                        f"{planned[name][0]} and {file} would both be project file '{name}'",
                        "project",
                        "upload",
                    )
                try:
                    planned[name] = (file, file.read_bytes())
                except OSError as exc:
                    raise MirrorError(
                        f"cannot read {file}: {exc.strerror}", "project", "upload"
                    ) from None
        for name, (_, data) in planned.items():
            self.upload(p_id, name, data)
        return list(planned)

    def projects(self):
        return self.call("project", "list")

    def delete_project(self, p_id):
        """Delete a project, its files and its finished jobs (``project.delete``)."""
        return self.call("project", "delete", p_id=p_id)

    def project_results(self, p_id):
        """Every job of a project with its ``params``, ``process`` and ``result`` (``project.results``)."""
        return self.call("project", "results", p_id=p_id)

    def project_jobs(self, p_id, limit=None, after=None):
        """Summaries of the jobs of project ``p_id`` (``project.getalljob``), newest first.

        All of them, or a page of ``limit``; ``after`` (the last ``job_id`` of a page) the next.
        """
        page = {k: v for k, v in (("limit", limit), ("after", after)) if v is not None}
        return self.call("project", "getalljob", p_id=p_id, **page)
