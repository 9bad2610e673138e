"""Deleting projects and packages and forgetting machines, refused while unfinished jobs need them."""

import logging

from sqlalchemy import delete, select

from db.models import CalcPackage, Cleanup, Job, JobEvent, JobStep, Machine, Project
from services.central.storage import outbox
from services.central.storage.catalog import package_path
from services.central.storage.records import now
from services.central.storage.retry import retry_disconnects
from services.central.storage.submissions import PACKAGE_NAME, PROJECT_NAME
from services.common.errors import MirrorError, package_missing, project_missing
from services.common.identity import LOCAL_NAME
from services.common.jobstates import FINAL

log = logging.getLogger(__name__)

# How many job ids a refusal names before it says "and N more".
NAMED_JOBS = 10


def unfinished_message(what, ids, advice):
    """``project 7 has 2 unfinished job(s): 41, 42; <advice>``, at most :data:`NAMED_JOBS` ids."""
    shown = ", ".join(map(str, ids[:NAMED_JOBS]))
    if len(ids) > NAMED_JOBS:
        shown += f" and {len(ids) - NAMED_JOBS} more"
    return f"{what} has {len(ids)} unfinished job(s): {shown}; {advice}"


def project_tree(p_id):
    """The directory of project ``p_id``'s files on the file server."""
    return f"/projects/{p_id}"


def job_tree(job_id):
    """The directory of job ``job_id``'s published files on the file server."""
    return f"/jobs/{job_id}"


def package_tree(c_id):
    """The directory of package ``c_id`` on the file server."""
    return package_path(c_id).rsplit("/", 1)[0]


@retry_disconnects
class Removal:
    """Deletes records in one transaction each, then the bytes they pointed at."""

    def __init__(self, sessionmaker, files):
        self.Session = sessionmaker
        self.files = files

    @staticmethod
    def _unfinished(session, *where):
        return list(
            session.scalars(select(Job.id).where(*where, Job.state.not_in(FINAL)).order_by(Job.id))
        )

    def delete_project(self, p_id, owner=None):
        """Delete project ``p_id`` (of ``owner``), its files and its finished jobs.

        Refused while a job of it is not final. The finished jobs go as
        ``job.delete`` removes them (their machines are asked to remove their
        directories), and their published files go from the file server. Answers
        ``{"p_id", "files": [names], "jobs": [deleted job ids]}``.
        """
        with self.Session.begin() as session:
            project = session.get(Project, p_id, with_for_update=True)
            if project is None or (owner is not None and project.owner != owner):
                raise project_missing(p_id)
            if (project.owner, project.name) == (LOCAL_NAME, PROJECT_NAME):
                raise MirrorError(f"project {p_id} holds every submitted script; it stays")
            busy = self._unfinished(session, Job.project_id == p_id)
            if busy:
                raise MirrorError(
                    unfinished_message(
                        f"project {p_id}", busy, "stop them (mirror kill) or wait until they end"
                    )
                )
            files = [f.name for f in project.files]
            jobs = self._delete_jobs(session, Job.project_id == p_id)
            session.delete(project)
        self._delete_bytes(project_tree(p_id), f"Project<{p_id}>")
        for job_id in jobs:
            self._delete_bytes(job_tree(job_id), f"Job<{job_id}>")
        log.info("Project<%s> deleted with %d file(s) and %d job(s)", p_id, len(files), len(jobs))
        return {"p_id": p_id, "files": files, "jobs": jobs}

    def delete_package(self, c_id, owner=None):
        """Delete package ``c_id`` (of ``owner``) and its zip on the file server.

        Refused while a job using it is not final. Its record stays, without
        a file, so that the finished jobs that used it keep their history and
        its version is never given again; every call then answers it missing.
        """
        with self.Session.begin() as session:
            package = session.get(CalcPackage, c_id, with_for_update=True)
            if package is None or not package.ftp_path:
                raise package_missing(c_id)
            if owner is not None and package.owner != owner:
                if package.shared:
                    raise MirrorError(
                        f"calcpackage {c_id} is shared by {package.owner}; "
                        "only its owner or an admin may delete it"
                    )
                raise package_missing(c_id)
            if (package.owner, package.name) == (LOCAL_NAME, PACKAGE_NAME):
                raise MirrorError(f"calcpackage {c_id} runs every submitted script; it stays")
            busy = self._unfinished(session, Job.package_id == c_id)
            if busy:
                raise MirrorError(
                    unfinished_message(
                        f"calcpackage {c_id}",
                        busy,
                        "stop them (mirror kill) or wait until they end",
                    )
                )
            package.ftp_path = ""
            name, version = package.name, package.package_version
        self._delete_bytes(package_tree(c_id), f"CalcPackage<{c_id}>")
        log.info("CalcPackage<%s> deleted: %s version %d", c_id, name, version)
        return {"c_id": c_id, "name": name, "version": version}

    def forget_machine(self, rid, is_online):
        """Remove machine ``rid`` from the registry; refused while it is online or has jobs.

        ``is_online(machine)`` says whether it still sends heartbeats. Its
        finished jobs keep their records; the directory cleanups it still owed
        are dropped with it.
        """
        with self.Session.begin() as session:
            machine = session.get(Machine, rid, with_for_update=True)
            if machine is None:
                raise MirrorError(f"resource machine is not existed , rid : {rid}")
            if is_online(machine):
                raise MirrorError(
                    f"resource machine {rid} ({machine.name}) is still sending heartbeats "
                    f"(last at {machine.last_heartbeat.isoformat()}); stop its agent first"
                )
            busy = self._unfinished(session, Job.rid == rid)
            if busy:
                raise MirrorError(
                    unfinished_message(
                        f"resource machine {rid}",
                        busy,
                        "cancel them (mirror kill) or delete them first",
                    )
                )
            session.execute(delete(Cleanup).where(Cleanup.rid == rid))
            session.delete(machine)
        log.info("Machine<%s> forgotten", rid)
        return {"rid": rid}

    def _delete_jobs(self, session, *where):
        """Delete the (finished) jobs matching ``where``; record cleanups for built ones."""
        jobs = session.execute(select(Job.id, Job.rid, Job.path).where(*where)).all()
        ids = [job.id for job in jobs]
        if not ids:
            return []
        session.execute(delete(JobEvent).where(JobEvent.job_id.in_(ids)))
        session.execute(delete(JobStep).where(JobStep.job_id.in_(ids)))
        session.execute(delete(outbox.OUTBOX).where(outbox.OUTBOX.c.job_id.in_(ids)))
        session.execute(delete(Job).where(Job.id.in_(ids)))
        stamp = now()
        for job in jobs:
            if job.rid is not None and job.path is not None:
                session.merge(Cleanup(job_id=job.id, rid=job.rid, created=stamp))
        return sorted(ids)

    def _delete_bytes(self, tree, entity):
        """Remove ``tree`` from the file server; the records are gone already."""
        try:
            self.files.delete_tree(tree)
        except Exception as exc:  # the file server is down or refuses
            # The records are gone, so nothing reaches these bytes any more.
            log.warning("%s: could not remove %s from the file server: %s", entity, tree, exc)
