"""The ``calcpackage`` service: register, list and share calculation packages."""

from adapters.package import inspect_package
from services.central.checks import decode
from services.central.providers import Caller, Database
from services.central.requests import Requests, idempotent
from services.common.errors import MirrorError
from services.common.rpc import mirror_rpc, to_int


class CalcPackageService:
    """Calculation packages: zip files with an ``adapter.xml``."""

    name = "calcpackage"

    db = Database()
    caller = Caller()
    requests = Requests()

    @mirror_rpc
    @idempotent
    def new(self, name, content, request_id=None):
        """Check and register base64 zip ``content``; answer its c_id.

        The package belongs to the caller; an admin's is shared with every user.
        A repeated ``request_id`` answers the first call's c_id.
        """
        data = decode(content, "content")
        # Validation first: a package with a bad adapter is never stored.
        adapter = inspect_package(data, f"{name}.zip")
        caller = self.caller
        return self.db.catalog.new_package(
            name, data, adapter, owner=caller.name, shared=caller.admin, within=self.requests.record
        )

    @mirror_rpc
    def list(self):
        """Every package the caller may use: their own and the shared ones."""
        return self.db.catalog.list_packages(user=self.caller.scope)

    @mirror_rpc
    def query(self, c_id):
        """Package ``c_id`` as ``list`` answers it (with its ``version``), if the caller may use it."""
        return self.db.catalog.package(to_int(c_id, "c_id"), user=self.caller.scope)

    @mirror_rpc
    def delete(self, c_id):
        """Delete package ``c_id`` of the caller and its zip; refused while unfinished jobs use it."""
        return self.db.removal.delete_package(to_int(c_id, "c_id"), owner=self.caller.scope)

    @mirror_rpc
    def share(self, c_id, shared=1):
        """Make package ``c_id`` usable by every user (``shared=0``: by its owner alone); admins only."""
        if not self.caller.admin:
            raise MirrorError("only an admin may share a calcpackage")
        self.db.catalog.share(to_int(c_id, "c_id"), bool(to_int(shared, "shared")))
        return []
