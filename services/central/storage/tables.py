"""A project's jobs as rows of parameters, monitoring values and results (``project.results``)."""

from sqlalchemy import select

from db.models import Job, Project
from services.central.storage.retry import retry_disconnects
from services.common.errors import project_missing


@retry_disconnects
class ResultTables:
    """Reads every job of a project in one query, oldest first."""

    def __init__(self, sessionmaker):
        self.Session = sessionmaker

    def project_results(self, p_id, owner=None):
        """``[{job_id, state, state_name, params, process, result, error}]`` of project ``p_id``."""
        columns = (
            Job.id,
            Job.state,
            Job.state_name,
            Job.params,
            Job.process,
            Job.result,
            Job.error,
        )
        with self.Session() as session:
            project = session.get(Project, p_id)
            if project is None or (owner is not None and project.owner != owner):
                raise project_missing(p_id)
            query = select(*columns).where(Job.project_id == p_id)
            if owner is not None:
                query = query.where(Job.owner == owner)
            rows = session.execute(query.order_by(Job.id)).all()
        return [
            {
                "job_id": row.id,
                "state": row.state,
                "state_name": row.state_name or "",
                "params": dict(row.params or {}),
                "process": dict(row.process or {}),
                "result": dict(row.result or {}),
                "error": row.error,
            }
            for row in rows
        ]
