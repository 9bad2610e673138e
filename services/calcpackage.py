"""The ``calcpackage`` service: register and list calculation packages."""

import io
import zipfile

from adapters.package import inspect_package
from services.common.rpc import mirror_rpc
from services.dependencies import Database
from services.project import decode


def adapter_text(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("adapter.xml").decode("utf-8")


class CalcPackageService:
    name = "calcpackage"

    db = Database()

    @mirror_rpc
    def new(self, name, content):
        data = decode(content, "content")
        # Validation first: a package with a bad adapter is never stored.
        adapter = inspect_package(data, f"{name}.zip")
        return self.db.catalog.new_package(name, data, adapter, adapter_text(data))

    @mirror_rpc
    def list(self):
        return self.db.catalog.list_packages()
