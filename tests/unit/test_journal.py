"""The agent's journal of deferred changes: written before a step starts, replayed after a crash."""

from types import SimpleNamespace

from services.agent import reporting
from services.agent.workspace import Workspace


def make_job(state="PREPARING", attempts=1):
    """A job as the central record has it: claimed, its directory not reported yet."""
    steps = [
        {"id": "a", "state": "PENDING", "exit_code": None, "start_time": None, "end_time": None}
    ]
    return {"job_id": 5, "state": state, "attempts": attempts, "path": None, "steps": steps}


def runtime(tmp_path):
    return SimpleNamespace(workspace=Workspace(tmp_path / "work", files=None))


def replay(rt, job):
    """The arguments of `reporting.replay_journal` for ``job`` on this machine."""
    return job, rt.workspace.job_dirs(job["job_id"])


def launched(workspace, job):
    """Defer what autorun defers up to a step's start, and journal it."""
    path = workspace.new_job_dir(job["job_id"])
    (path / ".mirror").mkdir()
    built = {"state": "PREPARING", "path": str(path), "reset_steps": True}
    reporting.report(None, job, built, ["PREPARING"], defer=True)
    reporting.report(None, job, {"state": "READY", "message": "files generated"}, defer=True)
    running = {"state": "RUNNING", "step": "a", "steps": {"a": {"state": "RUNNING"}}}
    reporting.report(None, job, running, ["READY"], defer=True)
    reporting.write_journal(job)


def test_a_restarted_agent_sees_the_step_it_had_started(tmp_path):
    rt = runtime(tmp_path)
    job = make_job()
    launched(rt.workspace, job)
    fresh = make_job()
    # The central record still reads PREPARING: the journal says what happened since.
    assert reporting.replay_journal(*replay(rt, fresh))
    assert fresh["state"] == "RUNNING" and fresh["step"] == "a"
    assert fresh["path"] == job["path"]
    assert fresh["steps"][0]["state"] == "RUNNING"
    assert fresh["_pending"]["expect"] == ["PREPARING"]


def test_the_last_whole_line_counts(tmp_path):
    rt = runtime(tmp_path)
    job = make_job()
    launched(rt.workspace, job)
    reporting.report(None, job, {"pid": 42}, defer=True)
    reporting.write_journal(job)
    with open(f"{job['path']}/{reporting.JOURNAL}", "a") as out:
        out.write('{"attempt": 1, "changes": {"pid"')  # the agent died mid-write
    fresh = make_job()
    assert reporting.replay_journal(*replay(rt, fresh))
    assert fresh["pid"] == 42


def test_journals_of_other_attempts_or_already_sent_are_ignored(tmp_path):
    rt = runtime(tmp_path)
    job = make_job()
    launched(rt.workspace, job)
    # Claimed again since (queued again after its machine was lost).
    assert not reporting.replay_journal(*replay(rt, make_job(attempts=2)))
    # Sent, and the agent died before removing the journal: the state moved on.
    assert not reporting.replay_journal(*replay(rt, make_job(state="RUNNING")))
    assert not reporting.replay_journal(*replay(rt, {**make_job(), "job_id": 6}))


def test_a_sent_report_empties_the_journal(tmp_path):
    rt = runtime(tmp_path)
    job = make_job()
    launched(rt.workspace, job)
    journal = tmp_path / "work" / "job5" / reporting.JOURNAL
    assert journal.is_file()
    sent = []

    class Outbox:
        def report(self, job_id, rid, changes, expect, linger=0.0, attempt=None):
            sent.append((changes["state"], expect))
            return {"state": changes["state"]}

    reporting.report(SimpleNamespace(outbox=Outbox(), rid=1), job, {"state": "COMPLETED"})
    assert sent == [("COMPLETED", ["PREPARING"])]
    assert journal.read_text() == "" and "_pending" not in job
    assert not reporting.replay_journal(*replay(rt, make_job()))
