"""The hidden project and bundled ``script`` package that script submissions belong to."""

import hashlib

from sqlalchemy import select

from adapters.adapter import parse_adapter
from adapters.bundled import package_zip
from adapters.package import package_inventory
from db.models import CalcPackage, Project
from services.central.storage.catalog import adapter_text
from services.central.storage.retry import retry_disconnects

PACKAGE_NAME = "__script__"
PROJECT_NAME = "__submissions__"


@retry_disconnects
class Submissions:
    """Finds, or registers once, what every script job points at."""

    def __init__(self, catalog):
        self.catalog = catalog
        self._ids = None
        self._inventory = None

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
            adapter = parse_adapter(adapter_text(data).encode("utf-8"))
            if c_id is None:
                c_id = self.catalog.new_package(PACKAGE_NAME, data, adapter)
            if p_id is None:
                p_id = self.catalog.new_project(PROJECT_NAME, "jobs submitted as scripts")
            self._ids = (p_id, c_id, adapter)
            self._inventory = package_inventory(data, adapter, "script package")
        return self._ids

    def inventory(self):
        """The placeholders of the bundled script package, for the dispatch check."""
        self.ids()
        return self._inventory
