"""The ``calcpackage`` service: register and list calculation packages."""

from adapters.package import inspect_package
from services.central.checks import decode
from services.central.providers import Database
from services.common.rpc import mirror_rpc


class CalcPackageService:
    """Calculation packages: zip files with an ``adapter.xml``."""

    name = "calcpackage"

    db = Database()

    @mirror_rpc
    def new(self, name, content):
        """Check and register base64 zip ``content``; answer its c_id."""
        data = decode(content, "content")
        # Validation first: a package with a bad adapter is never stored.
        adapter = inspect_package(data, f"{name}.zip")
        return self.db.catalog.new_package(name, data, adapter)

    @mirror_rpc
    def list(self):
        """Every registered package."""
        return self.db.catalog.list_packages()
