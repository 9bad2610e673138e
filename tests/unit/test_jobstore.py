"""JobStore on real databases (the embedded SQLite file and PostgreSQL), no broker."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from db.models import JobEvent
from db.session import make_sessionmaker
from services.central.storage.jobstore import JobStore
from services.common.errors import MirrorError


@pytest.fixture
def store(seeded_engine):
    return JobStore(make_sessionmaker(seeded_engine))


def make_jobs(store, count=1, rid=7, steps=("a", "b")):
    states = [
        SimpleNamespace(index=i, name=f"s{i}", params={"X": i, "NCPUS": 2}) for i in range(count)
    ]
    return store.create(1, 1, "para.xml", states, list(steps), [rid] * count)


def event_count(store, job_id):
    with store.Session() as session:
        return session.scalar(select(func.count()).where(JobEvent.job_id == job_id))


def test_created_jobs_have_the_record_shape(store):
    job_id, other = make_jobs(store, 2)
    job = store.get(job_id)
    assert job["job_id"] == job_id and other == job_id + 1
    assert job["state"] == "QUEUED" and job["rid"] == 7 and job["ncpus"] == 2
    assert job["params"] == {"X": 0, "NCPUS": 2}
    assert [s["id"] for s in job["steps"]] == ["a", "b"]
    assert {s["state"] for s in job["steps"]} == {"PENDING"}
    assert job["attempts"] == 0 and job["process"] == {} and job["result"] == {}
    assert store.events(job_id) == [
        {
            "time": job["submit_time"],
            "state": "QUEUED",
            "step": None,
            "message": "dispatched",
            "attempt": None,
        }
    ]
    assert [j["job_id"] for j in store.list(state="queued")] == [other, job_id]


def test_claim_then_steps_then_completion(store):
    (job_id,) = make_jobs(store)
    claimed = store.report(job_id, 7, {"state": "PREPARING", "message": "claimed"}, ["QUEUED"])
    assert claimed["state"] == "PREPARING" and claimed["attempts"] == 1
    running = store.report(
        job_id,
        7,
        {
            "state": "RUNNING",
            "step": "a",
            "pid": 42,
            "pid_start": 1.5,
            "path": "/w/1",
            "steps": {"a": {"state": "RUNNING", "start_time": "2026-01-01T00:00:00+00:00"}},
        },
        ["PREPARING", "READY"],
    )
    # The job started when its first step did (the agent's clock, like the step's).
    assert running["start_time"] == "2026-01-01T00:00:00+00:00" and running["pid"] == 42
    assert running["steps"][0]["start_time"] == "2026-01-01T00:00:00+00:00"
    assert store.get(job_id) == running
    done = store.report(
        job_id,
        7,
        {
            "state": "COMPLETED",
            "result": {"out": "ftp://x"},
            "steps": {
                "a": {"state": "DONE", "exit_code": 0},
                "b": {"state": "DONE", "exit_code": 0},
            },
            "message": "results recovered",
        },
        ["RUNNING"],
    )
    assert done["state"] == "COMPLETED" and done["pid"] is None and done["pid_start"] is None
    assert done["end_time"] is not None and done["result"] == {"out": "ftp://x"}
    assert [(s["state"], s["exit_code"]) for s in done["steps"]] == [("DONE", 0), ("DONE", 0)]
    assert store.get(job_id) == done
    messages = [e["message"] for e in store.events(job_id)]
    assert messages == [
        "dispatched",
        "claimed",
        "step a RUNNING",
        "",
        "step a DONE (exit code 0)",
        "step b DONE (exit code 0)",
        "results recovered",
    ]


def test_refused_reports_change_nothing(store):
    (job_id,) = make_jobs(store)
    before = store.get(job_id)
    with pytest.raises(MirrorError, match=r"job \d+ is QUEUED, expected RUNNING"):
        store.report(job_id, 7, {"state": "COMPLETED"}, ["RUNNING"])
    with pytest.raises(MirrorError, match=r"belongs to resource machine 7, not 8"):
        store.report(job_id, 8, {"state": "PREPARING"})
    with pytest.raises(MirrorError, match=r"has no step 'zz'"):
        store.report(job_id, 7, {"state": "PREPARING", "steps": {"a": {"state": "DONE"}, "zz": {}}})
    with pytest.raises(MirrorError, match=r"unknown job state 'DONE'"):
        store.report(job_id, 7, {"state": "DONE"})
    with pytest.raises(MirrorError, match=r"unknown fields: \['rid'\]"):
        store.report(job_id, 7, {"rid": 9})
    with pytest.raises(MirrorError, match="job is not existed , job : 999"):
        store.report(999, 7, {"state": "PREPARING"})
    assert store.get(job_id) == before
    assert event_count(store, job_id) == 1


def test_a_finished_job_built_again_starts_a_new_run(store):
    (job_id,) = make_jobs(store)
    store.report(job_id, 7, {"state": "FAILED", "error": "boom", "pid": 5})
    failed = store.get(job_id)
    assert failed["error"] == "boom" and failed["end_time"] and failed["pid"] is None
    again = store.report(
        job_id,
        7,
        {"state": "PREPARING", "reset_steps": True, "steps": {"a": {"state": "RUNNING"}}},
    )
    assert again["error"] is None and again["end_time"] is None and again["result"] == {}
    assert [s["state"] for s in again["steps"]] == ["RUNNING", "PENDING"]
    # Not from QUEUED: not a claim, so no new attempt.
    assert again["attempts"] == 0


def test_a_rebuilt_directory_restarts_the_clock_of_the_time_limit(store):
    """force=1 rebuilds a job: its start time is that of the new run's first step."""
    (job_id,) = make_jobs(store)
    first = "2020-01-01T00:00:00"
    store.report(
        job_id, 7, {"state": "RUNNING", "steps": {"a": {"state": "RUNNING", "start_time": first}}}
    )
    assert store.get(job_id)["start_time"].startswith("2020-01-01")
    rebuilt = store.report(job_id, 7, {"state": "PREPARING", "reset_steps": True})
    assert rebuilt["start_time"] is None and rebuilt["end_time"] is None
    again = store.report(job_id, 7, {"state": "RUNNING", "steps": {"a": {"state": "RUNNING"}}})
    assert again["start_time"] and not again["start_time"].startswith("2020")
    # A whole run reported in one batch (autorun's deferred reports) keeps its times.
    whole = store.report(
        job_id,
        7,
        {
            "state": "COMPLETED",
            "reset_steps": True,
            "steps": {
                "a": {"state": "DONE", "start_time": "2021-01-01T00:00:00", "exit_code": 0},
                "b": {"state": "DONE", "exit_code": 0},
            },
        },
    )
    assert whole["start_time"].startswith("2021-01-01") and whole["end_time"]


def test_progress_and_plain_messages(store):
    (job_id,) = make_jobs(store)
    store.report(job_id, 7, {"state": "PREPARING"}, ["QUEUED"])
    same = store.report(job_id, 7, {"state": "PREPARING", "message": "still here"})
    assert same["state"] == "PREPARING"
    quiet = store.report(job_id, 7, {"process": {"currentstep": "1"}})
    assert quiet["process"] == {"currentstep": "1"}
    assert [e["message"] for e in store.events(job_id)][-1] == "still here"
    assert event_count(store, job_id) == 3


def test_requeue_resets_a_claimed_job(store):
    (job_id,) = make_jobs(store)
    assert not store.requeue(job_id, "lost")
    store.report(job_id, 7, {"state": "PREPARING"}, ["QUEUED"])
    store.report(
        job_id, 7, {"state": "RUNNING", "step": "a", "pid": 3, "steps": {"a": {"state": "RUNNING"}}}
    )
    assert store.orphaned([7]) == [job_id]
    assert store.requeue(job_id, "machine 7 lost; queued again")
    job = store.get(job_id)
    assert (job["state"], job["rid"], job["step"], job["pid"]) == ("QUEUED", None, None, None)
    assert {s["state"] for s in job["steps"]} == {"PENDING"}
    assert job["attempts"] == 1
    assert store.events(job_id)[-1]["message"] == "machine 7 lost; queued again"
    assert store.place(job_id, 8) and store.getrid(job_id) == 8


def test_steps_reported_only_once_ended_still_get_their_run_events(store):
    """Autorun reports a short step once, with its end: the record reads as if it ran."""
    (job_id,) = make_jobs(store)
    store.report(job_id, 7, {"state": "PREPARING", "message": "claimed"}, ["QUEUED"])
    # The steps ran between the claim and this report (microseconds apart).
    claimed = datetime.now(UTC)
    a_start, a_end, b_start, b_end = (
        (claimed + timedelta(microseconds=n)).isoformat() for n in (1, 2, 3, 4)
    )
    done = store.report(
        job_id,
        7,
        {
            "state": "COMPLETED",
            "steps": {
                "a": {"state": "DONE", "exit_code": 0, "start_time": a_start, "end_time": a_end},
                "b": {"state": "DONE", "exit_code": 0, "start_time": b_start, "end_time": b_end},
            },
            "message": "step a done; step b done; results recovered",
        },
        ["PREPARING"],
    )
    assert done["start_time"] == a_start
    # Each step's events at the times it ran, not when the report came: in time order.
    events = [(e["time"], e["state"], e["message"]) for e in store.events(job_id)]
    assert [e[2] for e in events[:2]] == ["dispatched", "claimed"]
    assert events[2:6] == [
        (a_start, "RUNNING", "step a RUNNING"),
        (a_end, "COMPLETED", "step a DONE (exit code 0)"),
        (b_start, "RUNNING", "step b RUNNING"),
        (b_end, "COMPLETED", "step b DONE (exit code 0)"),
    ]
    assert events[6][1:] == ("COMPLETED", "step a done; step b done; results recovered")
    assert [e[0] for e in events] == sorted(e[0] for e in events)


def test_report_many_applies_each_report_on_its_own_in_one_transaction(store):
    first, second, third = make_jobs(store, 3)
    claim = {"state": "PREPARING", "message": "claimed"}
    store.report(first, 7, claim, ["QUEUED"])
    before = event_count(store, second)

    out = store.report_many(
        7,
        [
            (first, {"state": "READY", "message": "files generated"}, ["PREPARING"], 1),
            (second, {"state": "READY"}, ["PREPARING"], None),  # still queued: refused
            (second, {"steps": {"zz": {"state": "DONE"}}}, None, None),  # no such step
            (third, claim, ["QUEUED"], None),
            (999999, claim, ["QUEUED"], None),
        ],
    )

    assert [code for code, _ in out] == [0, -1, -1, 0, -1]
    assert out[0][1]["state"] == "READY" and out[3][1]["state"] == "PREPARING"
    assert out[1][1] == f"job {second} is QUEUED, expected PREPARING"
    assert out[2][1] == f"job {second} has no step 'zz'"
    assert out[4][1] == "job is not existed , job : 999999"
    # The refused ones wrote nothing; the others stand.
    assert store.get(second)["state"] == "QUEUED" and event_count(store, second) == before
    assert [store.get(j)["state"] for j in (first, third)] == ["READY", "PREPARING"]
    assert store.get(third)["attempts"] == 1


def test_a_slurm_step_is_recorded_and_found_by_its_slurm_id(store):
    job_id, other = make_jobs(store, 2)
    assert store.get(job_id)["slurm"] is None
    store.report(job_id, 7, {"state": "PREPARING"}, ["QUEUED"])
    batch = {"job_id": 4242, "nodelist": "", "partition": "work", "step": "a"}
    store.report(job_id, 7, {"state": "RUNNING", "step": "a", "slurm": batch})
    placed = {**batch, "nodelist": "node07"}
    assert store.report(job_id, 7, {"slurm": placed}, ["RUNNING"])["slurm"] == placed
    assert [j["job_id"] for j in store.list(slurm_id=4242)] == [job_id]
    assert store.list(slurm_id=4242, rid=8) == [] and store.list(slurm_id=1) == []
    # Queued again, the job has no batch job any more.
    assert store.requeue(job_id, "lost")
    assert store.get(job_id)["slurm"] is None and store.list(slurm_id=4242) == []
    assert store.get(other)["slurm"] is None
