"""Attempts fence late reports; creation calls answer a repeat with their first answer.

On real databases (the embedded SQLite file and PostgreSQL), no broker.
"""

import inspect
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from db.models import Job, Request
from db.session import make_sessionmaker
from services.central.requests import Ticket, idempotent
from services.central.storage.jobstore import JobStore
from services.central.storage.requests import RequestLog
from services.common.errors import MirrorError

CLAIM = {"state": "PREPARING", "message": "claimed"}
READY = {"state": "READY", "message": "files generated"}


@pytest.fixture
def Session(seeded_engine):
    return make_sessionmaker(seeded_engine)


@pytest.fixture
def store(Session):
    return JobStore(Session)


def make_jobs(store, count=1, rid=7, within=None):
    states = [SimpleNamespace(index=i, name=f"s{i}", params={"X": i}) for i in range(count)]
    return store.create(1, 1, "para.xml", states, ["a"], [rid] * count, within=within)


def requeued_and_claimed_again(store, job_id):
    """Claim (attempt 1), take back, claim again (attempt 2)."""
    assert store.report(job_id, 7, CLAIM, ["QUEUED"])["attempts"] == 1
    assert store.requeue(job_id, "machine 7 lost; queued again")
    assert store.place(job_id, 7)
    return store.report(job_id, 7, CLAIM, ["QUEUED"])


# -- attempts ------------------------------------------------------------------
def test_a_report_of_the_current_attempt_is_applied_and_its_events_say_so(store):
    (job_id,) = make_jobs(store)
    claimed = store.report(job_id, 7, CLAIM, ["QUEUED"])
    ready = store.report(job_id, 7, READY, ["PREPARING"], attempt=claimed["attempts"])
    assert ready["state"] == "READY" and ready["attempts"] == 1
    assert [(e["message"], e["attempt"]) for e in store.events(job_id)] == [
        ("dispatched", None),
        ("claimed", 1),
        ("files generated", 1),
    ]


def test_a_superseded_attempt_is_refused_and_writes_nothing(store):
    (job_id,) = make_jobs(store)
    again = requeued_and_claimed_again(store, job_id)
    assert again["attempts"] == 2
    events = store.events(job_id)

    late = {"state": "COMPLETED", "steps": {"a": {"state": "DONE", "exit_code": 0}}}
    with pytest.raises(MirrorError) as refused:
        store.report(job_id, 7, late, None, attempt=1)

    assert str(refused.value) == f"job {job_id} attempt 1 is superseded by attempt 2"
    assert store.get(job_id) == again
    assert store.events(job_id) == events
    assert events[-1]["attempt"] == 2


def test_a_superseded_attempt_is_told_so_even_once_the_job_moved_machines(store):
    (job_id,) = make_jobs(store)
    store.report(job_id, 7, CLAIM, ["QUEUED"])
    store.requeue(job_id, "machine 7 lost; queued again")
    store.place(job_id, 8)
    store.report(job_id, 8, CLAIM, ["QUEUED"])
    with pytest.raises(MirrorError, match=f"^job {job_id} attempt 1 is superseded by attempt 2$"):
        store.report(job_id, 7, READY, ["PREPARING"], attempt=1)


def test_a_report_naming_no_attempt_is_accepted(store):
    (job_id,) = make_jobs(store)
    requeued_and_claimed_again(store, job_id)
    assert store.report(job_id, 7, READY, ["PREPARING"])["state"] == "READY"


def test_a_batch_refuses_the_superseded_report_alone(store):
    stale, fresh = make_jobs(store, 2)
    requeued_and_claimed_again(store, stale)
    store.report(fresh, 7, CLAIM, ["QUEUED"])
    out = store.report_many(7, [(stale, READY, ["PREPARING"], 1), (fresh, READY, ["PREPARING"], 1)])
    assert out[0] == [-1, f"job {stale} attempt 1 is superseded by attempt 2"]
    assert out[1][0] == 0 and out[1][1]["state"] == "READY"
    assert store.get(stale)["state"] == "PREPARING"


# -- idempotent creation ----------------------------------------------------------
class Dispatcher:
    """The shape of a creation service: ``name``, ``db.requests``, ``requests``."""

    name = "jobdispatch"

    def __init__(self, store, caller="ann", correlation_id=None):
        self.store = store
        self.db = SimpleNamespace(requests=RequestLog(store.Session))
        self.requests = Ticket(caller, correlation_id)

    @idempotent
    def do(self, count, request_id=None):
        return make_jobs(self.store, count, within=self.requests.record)

    @idempotent
    def other(self, request_id=None):
        return make_jobs(self.store, 1, within=lambda db, ids: self.requests.record(db, ids[0]))


def job_count(store):
    with store.Session() as session:
        return session.scalar(select(func.count()).select_from(Job))


def test_a_repeated_request_id_answers_the_first_ids(store):
    first = Dispatcher(store).do(3, request_id="sweep-1")
    assert Dispatcher(store).do(3, request_id="sweep-1") == first
    assert job_count(store) == 3
    # Another caller's key of the same name is another request.
    assert Dispatcher(store, caller="bob").do(1, request_id="sweep-1") != first
    assert job_count(store) == 4


def test_a_redelivered_request_is_known_by_its_correlation_id(store):
    first = Dispatcher(store, correlation_id="c-1").do(2)
    assert Dispatcher(store, correlation_id="c-1").do(2) == first
    assert job_count(store) == 2
    assert Dispatcher(store, correlation_id="c-2").do(2) != first
    assert job_count(store) == 4


def test_a_call_known_by_nothing_creates_each_time(store):
    Dispatcher(store).do(1)
    Dispatcher(store).do(1)
    assert job_count(store) == 2
    with store.Session() as session:
        assert session.scalar(select(func.count()).select_from(Request)) == 0


def test_a_request_id_of_another_method_is_refused(store):
    Dispatcher(store).do(1, request_id="k")
    with pytest.raises(MirrorError, match="request_id 'k' was already used for jobdispatch.do"):
        Dispatcher(store).other(request_id="k")


def test_a_twin_that_committed_first_gives_its_answer(store):
    """The row of a concurrent twin appears between the look-up and the commit."""
    twin = Dispatcher(store)
    first = twin.do(2, request_id="race")
    late = Dispatcher(store)
    answers = iter([None, ("jobdispatch.do", first)])
    late.db.requests.find = lambda caller, key: next(answers)
    assert late.do(2, request_id="race") == first
    assert job_count(store) == 2


def test_an_overlong_request_id_is_refused(store):
    with pytest.raises(MirrorError, match="request_id must be 1 to 200 characters, got 201"):
        Dispatcher(store).do(1, request_id="x" * 201)


def test_arguments_are_checked_against_the_method_not_the_wrapper():
    # nameko binds a call's arguments with getcallargs before any worker runs.
    inspect.getcallargs(Dispatcher.do, None, 1, request_id="k")
    with pytest.raises(TypeError):
        inspect.getcallargs(Dispatcher.do, None, 1, unknown=2)
