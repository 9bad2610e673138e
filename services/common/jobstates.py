"""Job and step states, and the vocabulary of a report's changes: defined here only."""

QUEUED = "QUEUED"
PREPARING = "PREPARING"
READY = "READY"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
KILLED = "KILLED"

#: Every job state, in the order a job goes through them.
STATES = (QUEUED, PREPARING, READY, RUNNING, COMPLETED, FAILED, KILLED)
#: States a job does not leave by itself.
FINAL = frozenset({COMPLETED, FAILED, KILLED})
#: States of a job an agent holds (claimed, not yet final).
ACTIVE = (PREPARING, READY, RUNNING)

#: A step that has not run (yet, or again), and one that ended well.
PENDING = "PENDING"
DONE = "DONE"
STEP_STATES = (PENDING, RUNNING, DONE, FAILED, KILLED)
STEP_RESET = {"state": PENDING, "exit_code": None, "start_time": None, "end_time": None}

# A report is a dict of changes. Besides the job columns in REPORTABLE it may
# carry ``state`` (a transition), ``message`` (an event line), ``steps``
# ({step id: {state, exit_code, start_time, end_time}}) and ``reset_steps``.
REPORTABLE = frozenset({"step", "path", "error", "pid", "pid_start", "process", "result", "slurm"})
CHANGE_KEYS = REPORTABLE | {"state", "message", "steps", "reset_steps"}


def merge_changes(into, changes):
    """Fold ``changes`` into ``into``: later values win, step fields and messages add up."""
    for key, value in changes.items():
        if key == "steps":
            steps = into.setdefault("steps", {})
            for step_id, fields in value.items():
                steps.setdefault(step_id, {}).update(fields)
        elif key == "message" and into.get("message"):
            into["message"] = f"{into['message']}; {value}" if value else into["message"]
        elif key == "process" and isinstance(value, dict):
            into["process"] = {**into.get("process", {}), **value}
        else:
            into[key] = value


def apply_changes(job, changes):
    """Apply ``changes`` to a job bundle (``job.fetch``'s shape) as central will record them."""
    for key, value in changes.items():
        if key == "steps":
            for step in job["steps"]:
                step.update(value.get(step["id"], {}))
        elif key == "reset_steps":
            for step in job["steps"]:
                step.update(STEP_RESET)
            job["start_time"] = job["end_time"] = None
        elif key != "message":
            job[key] = value
