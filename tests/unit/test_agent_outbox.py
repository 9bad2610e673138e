"""The outbox through outages of central: reports kept on disk, sent again with backoff, in order.

A `FakeCentral` with ``down`` set fails that many calls as an unreachable
central would (after the client's own retries).
"""

import json

import eventlet
import pytest
from agent_support import STEPS, TRIVIAL, FakeCentral, make_job, prepared

from services.agent import outbox as outbox_module
from services.agent import processes, resync, stages
from services.agent.outbox import Outbox
from services.agent.reporting import Superseded
from services.agent.steprun import launch_step
from services.agent.watch import watch

READY = {"state": "READY", "message": "files generated"}


def fake(state="PREPARING", **fields):
    job, _ = make_job()
    return FakeCentral({**job, "state": state, "rid": 1, **fields})


@pytest.fixture
def delays(monkeypatch):
    """The pauses of the outbox between tries, recorded; each lasts no time."""
    seen = []
    sleep = eventlet.sleep

    def record(seconds=0):
        if seconds:
            seen.append(seconds)
        sleep(0)

    monkeypatch.setattr(outbox_module.eventlet, "sleep", record)
    return seen


def spooled(folder):
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def test_a_report_waits_on_disk_until_central_answers(tmp_path, delays):
    central = fake(attempts=3)
    central.down = 4
    box = Outbox(central, tmp_path / "outbox", 1, backoff=(1.0, 4.0))
    thread = eventlet.spawn(box.report, 5, 1, READY, ["PREPARING"], attempt=3)
    eventlet.sleep(0)
    assert box.offline
    on_disk = spooled(tmp_path / "outbox")
    assert on_disk == [
        {"job_id": 5, "changes": READY, "expect": ["PREPARING"], "attempt": 3, "rid": 1}
    ]
    record = thread.wait()
    assert record["state"] == "READY" and central.job["state"] == "READY"
    # The first send failed, then three tries of the redelivery before central took it.
    assert [c[1] for c in central.calls if c[0] == "unreachable"] == ["report"] + ["batch"] * 3
    assert delays == [1.0, 2.0, 4.0, 4.0]
    assert not box.offline and box.reconnected == 1
    assert spooled(tmp_path / "outbox") == []


def test_reports_made_during_an_outage_go_in_order(tmp_path, delays):
    central = fake()
    central.down = 3
    box = Outbox(central, tmp_path / "outbox", 1, backoff=(0.5, 30.0))
    steps = [
        (READY, ["PREPARING"]),
        ({"state": "RUNNING", "step": "a"}, ["READY"]),
        ({"state": "READY", "step": None}, ["RUNNING"]),
        ({"state": "COMPLETED"}, ["READY"]),
    ]
    threads = []
    for changes, expect in steps:
        threads.append(eventlet.spawn(box.report, 5, 1, changes, expect))
        eventlet.sleep(0)
    assert [e["changes"] for e in spooled(tmp_path / "outbox")] == [c for c, _ in steps]
    assert [t.wait()["state"] for t in threads] == ["READY", "RUNNING", "READY", "COMPLETED"]
    assert central.reports() == steps
    assert [c for c in central.calls if c[0] == "batch"] == [("batch", 4, None)]


def test_reports_left_on_disk_are_sent_by_the_next_agent_process(tmp_path, delays):
    central = fake()
    central.down = 100
    first = Outbox(central, tmp_path / "outbox", 1, backoff=(0.5, 1.0))
    eventlet.spawn(first.report, 5, 1, READY, ["PREPARING"])
    eventlet.spawn(first.report, 5, 1, {"state": "RUNNING"}, ["READY"])
    eventlet.sleep(0)
    first.close()
    assert len(spooled(tmp_path / "outbox")) == 2

    central.down = 0
    second = Outbox(central, tmp_path / "outbox", 1)
    second.wait_online()
    assert central.job["state"] == "RUNNING"
    assert central.reports() == [(READY, ["PREPARING"]), ({"state": "RUNNING"}, ["READY"])]
    assert spooled(tmp_path / "outbox") == []


def test_nothing_is_written_to_disk_while_central_answers(tmp_path):
    central = fake()
    box = Outbox(central, tmp_path / "outbox", 1)
    assert box.report(5, 1, READY, ["PREPARING"])["state"] == "READY"
    assert not (tmp_path / "outbox").exists()
    assert [c[0] for c in central.calls] == ["report"]


def test_a_claim_waits_for_central_and_is_never_dropped(tmp_path, delays):
    central = fake(state="QUEUED", attempts=1)
    central.down = 3
    box = Outbox(central, tmp_path / "outbox", 1, backoff=(1.0, 2.0))
    bundle = box.claim(5, 1)
    assert bundle["state"] == "PREPARING" and bundle["attempt"] == 2
    assert [c[1] for c in central.calls if c[0] == "unreachable"] == ["claim", "batch", "batch"]
    assert delays == [1.0, 2.0, 2.0]


def test_a_lingering_report_stalled_with_a_claim_keeps_its_order(tmp_path, delays):
    central = fake()
    box = Outbox(central, tmp_path / "outbox", 1, backoff=(0.5, 1.0))
    thread = eventlet.spawn(box.report, 5, 1, READY, ["PREPARING"], linger=60)
    eventlet.sleep(0)
    central.down = 1
    with pytest.raises(Exception, match="is READY, expected"):
        # The claim of a job that is not queued: refused once central answers.
        box.claim(5, 1)
    assert thread.wait()["state"] == "READY"
    assert central.reports() == [(READY, ["PREPARING"])]


def test_reports_carry_the_attempt_of_the_bundle(machine):
    job, served = make_job()
    rt = machine({**job, "attempts": 2}, served)
    prepared(rt, {**job, "attempt": 2})
    assert [call[-1] for call in rt.central.calls if call[0] == "report"] == [2, 2]


def test_a_job_without_attempt_numbers_reports_none(machine):
    job, served = make_job()
    rt = machine(job, served)
    prepared(rt, job)
    assert all(len(call) == 3 for call in rt.central.calls if call[0] == "report")


def test_a_superseded_attempt_stops_its_step_and_reports_no_more(machine):
    job, served = make_job(TRIVIAL.replace(STEPS, STEPS.replace('"true"', '"sleep 30"')))
    job = {**job, "attempt": 1}
    rt = machine(job, served)
    prepared(rt, job)
    running = launch_step(rt, job)
    assert processes.alive(running.pid, running.started)
    # Central gave the job to a new attempt; the next monitoring report is refused.
    rt.central.job["attempts"] = 2
    sent = len(rt.central.calls)
    watch(rt, job, running)
    assert running.killed and 5 not in rt.running
    assert not processes.alive(running.pid, running.started)
    assert [c[0] for c in rt.central.calls[sent:]] == ["report"]


def test_a_superseded_report_raises_superseded(machine):
    job, served = make_job()
    rt = machine({**job, "attempts": 3}, served)
    with pytest.raises(Superseded, match="job 5 attempt 2 is superseded by attempt 3"):
        stages.build_directory(rt, {**job, "state": "QUEUED", "attempt": 2})


def test_resync_stops_a_step_central_took_away(machine):
    job, served = make_job(TRIVIAL.replace(STEPS, STEPS.replace('"true"', '"sleep 30"')))
    rt = machine(job, served)
    prepared(rt, job)
    running = launch_step(rt, job)
    rt.central.job.update(state="QUEUED", rid=2)
    rt.recovered, rt.outbox.reconnected = True, 1
    assert resync.due(rt)
    resync.resync(rt)
    assert running.killed and not processes.alive(running.pid, running.started)
    assert rt.synced == 1 and not resync.due(rt)


def test_resync_keeps_a_step_still_running_here(machine):
    job, served = make_job(TRIVIAL.replace(STEPS, STEPS.replace('"true"', '"sleep 30"')))
    rt = machine(job, served)
    prepared(rt, job)
    running = launch_step(rt, job)
    resync.check_held(rt, 5)
    assert not running.killed and processes.alive(running.pid, running.started)


def test_heartbeat_cleanup_removes_deleted_jobs_leftovers_and_reports_them(machine, tmp_path):
    """Central names deleted jobs by id: their directories and files go, then it is told."""
    job, served = make_job()
    rt = machine(job, served)
    root = rt.workspace.root
    (root / "job7" / "sub").mkdir(parents=True)
    (root / "job7.2").mkdir()
    (root / "job8").mkdir()
    rt.files.uploaded = {"/jobs/7/result/a.txt": b"a", "/jobs/8/result/b.txt": b"b"}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    sent = []

    class Beats:
        def call(self, service, method, **kwargs):
            sent.append(kwargs.get("cleaned"))
            return {"cleanup": [7, "../elsewhere", str(root)]} if len(sent) == 1 else {}

        def close(self):
            pass

    rt.beats = Beats()
    rt.heartbeat()
    assert not (root / "job7").exists() and not (root / "job7.2").exists()
    assert (root / "job8").is_dir() and outside.is_dir() and root.is_dir()
    assert list(rt.files.uploaded) == ["/jobs/8/result/b.txt"]
    rt.heartbeat()
    rt.heartbeat()
    # Told once, at the next beat; not again after central stopped asking.
    assert sent == [None, [7], None]


def test_a_heartbeat_answer_without_cleanup_removes_nothing(machine):
    job, served = make_job()
    rt = machine(job, served)
    (rt.workspace.root / "job7").mkdir()

    class Beats:
        def call(self, service, method, **kwargs):
            return []

        def close(self):
            pass

    rt.beats = Beats()
    rt.heartbeat()
    assert (rt.workspace.root / "job7").is_dir()
