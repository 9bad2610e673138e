"""The ``project`` service: projects and their input files."""

import base64
import binascii
import posixpath

from adapters.paths import confine
from services.common.errors import MirrorError
from services.common.rpc import mirror_rpc, to_int
from services.dependencies import Database


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


class ProjectService:
    name = "project"

    db = Database()

    @mirror_rpc
    def new(self, name, description=""):
        return self.db.catalog.new_project(name, description)

    @mirror_rpc
    def upload(self, p_id, name, content):
        p_id = to_int(p_id, "p_id")
        name = check_file_name(name)
        self.db.catalog.upload(p_id, name, decode(content, "content"))
        return []

    @mirror_rpc
    def list(self):
        return self.db.catalog.list_projects()

    @mirror_rpc
    def getalljob(self, p_id):
        p_id = to_int(p_id, "p_id")
        self.db.catalog.require_project(p_id)
        return self.db.jobs.list(p_id=p_id, limit=None)
