"""Projects, their files and calculation packages: records in the database, bytes on FTP."""

import hashlib
import io
import logging
import zipfile

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from adapters.adapter import parse_adapter
from adapters.package import package_inventory
from db.models import CalcPackage, Project, ProjectFile
from services.central.storage.retry import retry_disconnects
from services.common.errors import MirrorError, package_missing, project_missing
from services.common.identity import LOCAL_NAME

log = logging.getLogger(__name__)

# What every claim reads, built once (see the statements in records.py).
JOB_PACKAGE = select(CalcPackage.sha256, CalcPackage.adapter_xml, CalcPackage.ftp_path).where(
    CalcPackage.id == bindparam("key")
)
JOB_FILES = (
    select(ProjectFile.name, ProjectFile.ftp_path, ProjectFile.sha256, ProjectFile.size)
    .where(ProjectFile.project_id == bindparam("key"))
    .order_by(ProjectFile.name)
)

# Registrations of one name at once each take the next version; a loser tries again.
VERSION_TRIES = 5


def adapter_text(data):
    """The ``adapter.xml`` of package zip ``data``, as text."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("adapter.xml").decode("utf-8")


def project_dict(project):
    """A project as ``project.list`` answers it."""
    return {
        "p_id": project.id,
        "name": project.name,
        "description": project.description,
        "owner": project.owner,
        "created": project.created.isoformat(),
        "files": [f.name for f in project.files],
    }


def package_dict(package):
    """A package as ``calcpackage.list`` answers it."""
    return {
        "c_id": package.id,
        "name": package.name,
        "adapter": package.adapter_name,
        "version": package.package_version,
        "adapter_version": package.version,
        "size": package.size,
        "sha256": package.sha256,
        "owner": package.owner,
        "shared": bool(package.shared),
        "created": package.created.isoformat(),
    }


def project_file_path(p_id, name):
    """Where project file ``name`` lives on the file server."""
    return f"/projects/{p_id}/files/{name}"


def package_path(c_id):
    """Where package ``c_id`` lives on the file server."""
    return f"/packages/{c_id}/package.zip"


@retry_disconnects
class Catalog:
    """Storage of projects, project files and calculation packages."""

    def __init__(self, sessionmaker, files):
        self.Session = sessionmaker
        self.files = files
        # Parsed adapters by c_id: a registered package never changes, and
        # every dispatch of it needs its steps.
        self._adapters = {}
        # Placeholder inventories by c_id (adapter and templates), for the dispatch check.
        self._inventories = {}

    # -- projects ----------------------------------------------------------
    # ``owner`` (a user name) limits a read or write to that user's projects:
    # any other answers as missing. None (an admin, the mesh itself) reaches all.
    def new_project(self, name, description="", owner=LOCAL_NAME, within=None):
        """Create a project of ``owner``; answer its p_id.

        ``within(session, p_id)`` runs in the same transaction.
        """
        if not isinstance(name, str) or not name.strip():
            raise MirrorError("project name must be a non-empty string")
        with self.Session.begin() as session:
            project = Project(name=name.strip(), description=str(description or ""), owner=owner)
            session.add(project)
            session.flush()
            if within is not None:
                within(session, project.id)
            log.info("Project<%s> created: %s", project.id, project.name)
            return project.id

    def require_project(self, p_id, owner=None):
        """Raise the seed's error if project ``p_id`` does not exist (or is not ``owner``'s)."""
        with self.Session() as session:
            self.get_project(session, p_id, owner)

    def get_project(self, session, p_id, owner=None):
        """Project ``p_id`` in ``session``, or the seed's error."""
        project = session.get(Project, p_id)
        if project is None or (owner is not None and project.owner != owner):
            raise project_missing(p_id)
        return project

    def list_projects(self, owner=None):
        """Every project (of ``owner``), oldest first."""
        query = select(Project).order_by(Project.id)
        if owner is not None:
            query = query.where(Project.owner == owner)
        with self.Session() as session:
            return [project_dict(p) for p in session.scalars(query).all()]

    def upload(self, p_id, name, data, owner=None):
        """Store ``data`` as project file ``name``; a second upload replaces the first."""
        with self.Session() as session:
            self.get_project(session, p_id, owner)
        remote = project_file_path(p_id, name)
        # Bytes first, record second: a record never points at a missing file.
        self.files.put_bytes(remote, data)
        digest = hashlib.sha256(data).hexdigest()
        with self.Session.begin() as session:
            existing = session.scalar(
                select(ProjectFile).where(ProjectFile.project_id == p_id, ProjectFile.name == name)
            )
            if existing is None:
                session.add(
                    ProjectFile(
                        project_id=p_id, name=name, size=len(data), sha256=digest, ftp_path=remote
                    )
                )
            else:
                existing.size, existing.sha256, existing.ftp_path = len(data), digest, remote
        log.info("Project<%s> file %s stored (%d bytes)", p_id, name, len(data))

    def read_project_file(self, p_id, name, owner=None):
        """The bytes of file ``name`` of project ``p_id``."""
        with self.Session() as session:
            project = self.get_project(session, p_id, owner)
            match = [f for f in project.files if f.name == name]
        if not match:
            raise MirrorError(f"project {p_id} has no file '{name}'")
        return self.files.get_bytes(match[0].ftp_path)

    # -- packages ----------------------------------------------------------
    # ``user`` (a user name) limits a read to the packages that user may use:
    # their own and the shared ones. None (an admin, the mesh itself) uses all.
    def new_package(self, name, data, adapter, owner=LOCAL_NAME, shared=True, within=None):
        """Register package zip ``data`` whose checked adapter is ``adapter``; answer its c_id.

        A ``shared`` package is usable by every user, any other by its ``owner`` alone.
        ``within(session, c_id)`` runs in the transaction that completes the record.
        """
        if not isinstance(name, str) or not name.strip():
            raise MirrorError("calcpackage name must be a non-empty string")
        digest = hashlib.sha256(data).hexdigest()
        name = name.strip()
        for tries_left in range(VERSION_TRIES - 1, -1, -1):
            try:
                c_id, version = self._insert_package(name, data, adapter, digest, owner, shared)
                break
            except IntegrityError:
                # Another registration of the same name took this version first.
                if not tries_left:
                    raise
        try:
            self.files.put_bytes(package_path(c_id), data)
        except Exception:
            # No record may outlive a failed upload.
            with self.Session.begin() as session:
                session.delete(session.get(CalcPackage, c_id))
            raise
        with self.Session.begin() as session:
            session.get(CalcPackage, c_id).ftp_path = package_path(c_id)
            if within is not None:
                within(session, c_id)
        log.info(
            "CalcPackage<%s> registered: %s version %d (%d bytes)", c_id, name, version, len(data)
        )
        return c_id

    def _insert_package(self, name, data, adapter, digest, owner, shared):
        """Insert the record of the next version of package ``name`` of ``owner``; answer its id."""
        with self.Session.begin() as session:
            latest = session.scalar(
                select(func.max(CalcPackage.package_version)).where(
                    CalcPackage.owner == owner, CalcPackage.name == name
                )
            )
            package = CalcPackage(
                name=name,
                package_version=(latest or 0) + 1,
                adapter_name=adapter.name,
                version=adapter.version or "",
                adapter_xml=adapter_text(data),
                size=len(data),
                sha256=digest,
                ftp_path="",
                owner=owner,
                shared=bool(shared),
            )
            session.add(package)
            session.flush()
            return package.id, package.package_version

    def job_inputs(self, p_id, c_id):
        """``(package, project files)`` as an agent needs them to lay out a job directory.

        Plain column queries: every claim asks for these.
        """
        with self.Session() as session:
            db = session.connection()
            package = db.execute(JOB_PACKAGE, {"key": c_id}).first()
            if package is None or not package.ftp_path:
                raise package_missing(c_id)
            files = db.execute(JOB_FILES, {"key": p_id}).all()
            if not files and session.get(Project, p_id) is None:
                raise project_missing(p_id)
        package = {
            "c_id": c_id,
            "ftp_path": package_path(c_id),
            "sha256": package.sha256,
            "adapter_xml": package.adapter_xml,
        }
        return package, [dict(f._mapping) for f in files]

    def adapter(self, c_id):
        """The parsed adapter of package ``c_id``."""
        adapter = self._adapters.get(c_id)
        if adapter is None:
            with self.Session() as session:
                text = self.get_package(session, c_id).adapter_xml
            adapter = self._adapters[c_id] = parse_adapter(text.encode("utf-8"), "adapter.xml")
        return adapter

    def inventory(self, c_id):
        """Every placeholder of package ``c_id``: read from its zip once, then cached."""
        inv = self._inventories.get(c_id)
        if inv is None:
            data = self.files.get_bytes(package_path(c_id))
            inv = self._inventories[c_id] = package_inventory(
                data, self.adapter(c_id), f"package {c_id}"
            )
        return inv

    def get_package(self, session, c_id, user=None):
        """Registered package ``c_id`` in ``session`` (usable by ``user``), or the seed's error."""
        package = session.get(CalcPackage, c_id)
        if package is None or not package.ftp_path:
            raise package_missing(c_id)
        if user is not None and not package.shared and package.owner != user:
            raise package_missing(c_id)
        return package

    def require_package(self, c_id, user=None):
        """Raise the seed's error unless package ``c_id`` exists and ``user`` may use it."""
        with self.Session() as session:
            self.get_package(session, c_id, user)

    def share(self, c_id, shared):
        """Make package ``c_id`` usable by every user (``shared``) or by its owner alone."""
        with self.Session.begin() as session:
            self.get_package(session, c_id).shared = bool(shared)
        log.info("CalcPackage<%s> %s", c_id, "shared" if shared else "no longer shared")

    def package(self, c_id, user=None):
        """Package ``c_id`` as ``calcpackage.list`` answers it, if ``user`` may use it."""
        with self.Session() as session:
            return package_dict(self.get_package(session, c_id, user))

    def list_packages(self, user=None):
        """Every registered package (``user`` may use), oldest first."""
        query = select(CalcPackage).where(CalcPackage.ftp_path != "").order_by(CalcPackage.id)
        if user is not None:
            query = query.where(CalcPackage.shared.is_(True) | (CalcPackage.owner == user))
        with self.Session() as session:
            return [package_dict(p) for p in session.scalars(query).all()]
