"""How the agent's client judges central's answers for reports: refused, or central unavailable."""

from types import SimpleNamespace

import pytest

from services.agent import central_client
from services.agent.central_client import CentralClient, CentralUnavailable
from services.common.errors import MirrorError


def client(monkeypatch, answers):
    """A client whose every call answers the next of ``answers``, recorded in ``sent``."""
    monkeypatch.setattr(central_client.eventlet, "sleep", lambda seconds: None)
    sent = []

    def method(**kwargs):
        sent.append(kwargs)
        return answers.pop(0)

    job = SimpleNamespace(report=method, batch=method, claim=method)
    central = CentralClient({"AMQP_URI": "memory://", "rpc_exchange": "x"}, retries=2)
    central._take = lambda: (None, SimpleNamespace(job=job))
    central._pool.put = lambda entry: None
    return central, sent


def test_a_database_that_stays_down_makes_a_report_wait(monkeypatch):
    central, sent = client(monkeypatch, [[-1, "internal error: OperationalError: gone"]] * 3)
    with pytest.raises(CentralUnavailable, match="failed after 3 tries"):
        central.report(5, 1, {"state": "READY"}, ["PREPARING"])
    assert len(sent) == 3


def test_a_refused_report_is_refused_at_once(monkeypatch):
    central, sent = client(monkeypatch, [[-1, "job 5 is KILLED, expected ['PREPARING']"]])
    with pytest.raises(MirrorError, match="is KILLED") as refused:
        central.report(5, 1, {"state": "READY"}, ["PREPARING"])
    assert not isinstance(refused.value, CentralUnavailable)
    assert len(sent) == 1


def test_the_attempt_is_sent_only_when_the_bundle_has_one(monkeypatch):
    central, sent = client(monkeypatch, [[0, {"state": "READY"}]] * 2)
    central.report(5, 1, {"state": "READY"}, ["PREPARING"])
    central.report(5, 1, {"state": "READY"}, ["PREPARING"], attempt=4)
    assert "attempt" not in sent[0] and sent[1]["attempt"] == 4


def test_batch_entries_carry_the_attempt_they_were_given(monkeypatch):
    answer = {"reports": [[0, {"state": "READY"}]], "claimed": None, "claim_error": None}
    central, sent = client(monkeypatch, [[0, answer]])
    entry = {"job_id": 5, "changes": {"state": "READY"}, "expect": ["PREPARING"], "attempt": 2}
    outcomes, claimed = central.batch(1, [entry])
    assert outcomes == [{"state": "READY"}] and claimed is None
    assert sent[0]["reports"] == [entry]
