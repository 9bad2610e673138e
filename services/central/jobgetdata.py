"""The ``jobgetdata`` service: a job's monitoring and result URLs."""

from services.central.providers import Caller, Database
from services.common.jobstates import DONE, RUNNING
from services.common.rpc import mirror_rpc, to_int


def job_data(job):
    """``{"process": {...}, "result": {...}}`` as SPEC section 7 describes."""
    process = dict(job["process"] or {})
    if "currentstep" not in process:
        steps = job["steps"]
        done = sum(1 for s in steps if s["state"] == DONE)
        running = any(s["state"] == RUNNING for s in steps)
        process["currentstep"] = done + (1 if running else 0)
        process["allstep"] = len(steps)
    process["currentstep"] = str(process["currentstep"])
    process["allstep"] = str(process["allstep"])
    return {"process": process, "result": dict(job["result"] or {})}


class JobGetDataService:
    """A job's progress and result URLs."""

    name = "jobgetdata"

    db = Database()
    caller = Caller()

    @mirror_rpc
    def do(self, job_id):
        """The ``process`` and ``result`` of a job of the caller."""
        return job_data(self.db.jobs.get(to_int(job_id, "job_id"), owner=self.caller.scope))
