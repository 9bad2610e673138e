"""The ``project`` service: projects and their input files."""

from services.central.checks import check_file_name, decode
from services.central.providers import Caller, Database
from services.central.requests import Requests, idempotent
from services.common.rpc import mirror_rpc, page_limit, to_int


class ProjectService:
    """Projects and their input files (SPEC section 7)."""

    name = "project"

    db = Database()
    caller = Caller()
    requests = Requests()

    @mirror_rpc
    @idempotent
    def new(self, name, description="", request_id=None):
        """Create a project of the caller; answer its p_id (the first one for a repeated ``request_id``)."""
        return self.db.catalog.new_project(
            name, description, owner=self.caller.name, within=self.requests.record
        )

    @mirror_rpc
    def upload(self, p_id, name, content):
        """Store base64 ``content`` as file ``name`` of project ``p_id``."""
        p_id = to_int(p_id, "p_id")
        name = check_file_name(name)
        self.db.catalog.upload(p_id, name, decode(content, "content"), owner=self.caller.scope)
        return []

    @mirror_rpc
    def list(self):
        """Every project of the caller (an admin: every one) with its file names."""
        return self.db.catalog.list_projects(owner=self.caller.scope)

    @mirror_rpc
    def getalljob(self, p_id, limit=None, after=None):
        """The job summaries of project ``p_id``, newest first: all of them, or a page.

        ``limit`` caps the page; ``after`` (the ``job_id`` of the last summary
        of a page) gives the next one.
        """
        p_id = to_int(p_id, "p_id")
        scope = self.caller.scope
        self.db.catalog.require_project(p_id, owner=scope)
        return self.db.jobs.list(
            p_id=p_id,
            limit=page_limit(limit, optional=True),
            owner=scope,
            after=to_int(after, "after", optional=True),
        )

    @mirror_rpc
    def delete(self, p_id):
        """Delete project ``p_id``, its files (also on the file server) and its finished jobs.

        Refused while a job of the project has not ended.
        """
        return self.db.removal.delete_project(to_int(p_id, "p_id"), owner=self.caller.scope)

    @mirror_rpc
    def results(self, p_id):
        """Every job of project ``p_id``, oldest first: parameters, monitoring values, results."""
        return self.db.tables.project_results(to_int(p_id, "p_id"), owner=self.caller.scope)
