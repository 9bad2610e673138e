"""The event vocabulary, the relay's bookkeeping, the event-fed metrics and the SSE body."""

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.events import CLOSED, Subscription, sse, stream
from gateway.metrics import CLAIM_TO_START, STEP_SECONDS, EventTimer, metrics_text
from services.central.relay import GAP_WAIT, Relay
from services.common.events import (
    FilterError,
    matches,
    parse_filters,
    routing_key,
    visible_to,
)
from services.common.identity import Identity


def job_event(event_id, job_id=5, state="RUNNING", owner="ann", **more):
    return {
        "kind": "job",
        "id": event_id,
        "job_id": job_id,
        "p_id": 1,
        "rid": 2,
        "state": state,
        "step": more.pop("step", None),
        "message": more.pop("message", ""),
        "time": more.pop("time", "2026-01-01T00:00:00+00:00"),
        "owner": owner,
        **more,
    }


def test_filters_are_parsed_and_matched():
    filters = parse_filters({"job": "5,6", "state": ["running"], "machine": "2"})
    assert filters == {
        "job": frozenset({"5", "6"}),
        "state": frozenset({"RUNNING"}),
        "machine": frozenset({"2"}),
    }
    assert matches(job_event(1), filters)
    assert not matches(job_event(1, job_id=7), filters)
    assert not matches(job_event(1, state="QUEUED"), filters)
    machine = {"kind": "machine", "rid": 2, "name": "alpha"}
    assert matches(machine, parse_filters({"machine": "alpha"}))
    assert not matches(machine, parse_filters({"job": "5"}))
    assert parse_filters({"job": ""}) == {}
    by_sweep = parse_filters({"sweep": "3"})
    assert matches(job_event(1, sweep=3), by_sweep)
    assert not matches(job_event(1, sweep=4), by_sweep)
    assert not matches(machine, by_sweep)
    for bad, message in (
        ({"colour": "red"}, "unknown event filter 'colour'"),
        ({"state": "DREAMING"}, "unknown job state 'DREAMING'"),
        ({"job": "x"}, "event filter job must be ids, got 'x'"),
        ({"sweep": "7,x"}, "event filter sweep must be ids, got 'x'"),
    ):
        with pytest.raises(FilterError, match=message):
            parse_filters(bad)


def test_owners_see_their_own_job_events_and_every_machine_event():
    ann, bob, admin = Identity("ann", False), Identity("bob", False), Identity("root", True)
    event = job_event(1)
    assert visible_to(event, ann) and visible_to(event, admin) and not visible_to(event, bob)
    assert visible_to({"kind": "machine", "rid": 1}, bob)
    assert routing_key(event) == "job.RUNNING"
    assert routing_key({"kind": "machine", "rid": 3}) == "machine.3"


def test_relay_moves_its_mark_and_publishes_late_commits_once():
    now = [0.0]
    relay = Relay(10, clock=lambda: now[0])
    assert [e["id"] for e in relay.take([job_event(11), job_event(14)])] == [11, 14]
    assert relay.high == 14
    assert relay.pending_gaps() == [12, 13]
    # 13 commits late: published once, then no longer looked for.
    assert [e["id"] for e in relay.take([job_event(13)])] == [13]
    assert relay.take([job_event(13), job_event(14)]) == []
    assert relay.pending_gaps() == [12]
    now[0] += GAP_WAIT + 1
    assert relay.pending_gaps() == []


def test_relay_reports_machines_that_changed():
    relay = Relay(0)
    machine = {"rid": 1, "name": "a", "online": True, "slots": 4, "used_cores": 0}
    assert relay.machine_changes([machine]) == []
    assert relay.machine_changes([machine]) == []
    changed = relay.machine_changes([{**machine, "online": False}])
    assert [(e["kind"], e["rid"], e["online"]) for e in changed] == [("machine", 1, False)]


def test_stream_sends_the_backlog_then_live_events_once_each():
    class Hub:
        def __init__(self):
            self.gone = []

        def unsubscribe(self, sub):
            self.gone.append(sub)

    hub = Hub()
    sub = Subscription(Identity("ann", False), {})
    for event in (job_event(2), job_event(3, owner="bob"), job_event(4), CLOSED):
        sub.queue.put(event) if event is CLOSED else sub.offer(event)
    body = b"".join(stream(hub, sub, [job_event(1), job_event(2)], ping_every=0.01)).decode()
    assert [line for line in body.splitlines() if line.startswith("id:")] == [
        "id: 1",
        "id: 2",
        "id: 4",
    ]
    assert hub.gone == [sub]
    machine = sse({"kind": "machine", "rid": 1}).decode()
    assert machine.startswith("event: machine\ndata: ") and "id:" not in machine


def test_event_timer_feeds_claim_to_start_and_step_durations():
    def at(seconds):
        return datetime.fromtimestamp(1_700_000_000 + seconds, UTC).isoformat()

    def count(histogram):
        return next(
            s.value
            for m in histogram.collect()
            for s in m.samples
            if s.name.endswith("_count") and s.labels.get("step", "") in ("", "solve")
        )

    before_claim, before_step = count(CLAIM_TO_START), 0
    try:
        before_step = count(STEP_SECONDS)
    except StopIteration:
        pass
    timer = EventTimer()
    timer(job_event(1, job_id=9, state="PREPARING", time=at(0)))
    timer(job_event(2, job_id=9, state="RUNNING", time=at(2)))
    timer(job_event(3, job_id=9, step="solve", message="step solve RUNNING", time=at(2)))
    timer(job_event(4, job_id=9, step="solve", message="step solve COMPLETED", time=at(7)))
    assert count(CLAIM_TO_START) == before_claim + 1
    assert count(STEP_SECONDS) == before_step + 1
    assert timer.claimed == {} and timer.steps == {}


def test_metrics_text_parses_with_jobs_by_state_and_machines():
    machines = [
        {
            "rid": 1,
            "name": "alpha",
            "online": True,
            "slots": 4,
            "used_cores": 1,
            "running": 1,
            "queued": 2,
            "last_heartbeat": datetime.now(UTC).isoformat(),
        }
    ]
    text = metrics_text({"COMPLETED": 3}, machines).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    jobs = {s.labels["state"]: s.value for s in families["mirror_jobs"].samples}
    assert jobs["COMPLETED"] == 3 and jobs["QUEUED"] == 0
    assert families["mirror_machine_queued"].samples[0].value == 2
    age = families["mirror_machine_heartbeat_age_seconds"].samples[0].value
    assert 0 <= age < 60
