"""The agent's calls to central (claim, report, ``job.batch``) against real central services.

The test plays the agent of machine 7 with the agent's own `CentralClient` and `Outbox`,
so each call and its batching can be observed one at a time.
"""

import eventlet
import pytest
import sqlalchemy as sa

from adapters.bundled import package_zip, project_files
from services.agent.central_client import CentralClient
from services.agent.outbox import Outbox
from services.common.errors import MirrorError
from tests.mesh import wait_for

RID = 7


@pytest.fixture(scope="module")
def queued(core):
    """``(mesh, next_id)``: ``next_id()`` gives a new job QUEUED on machine 7 (no agent runs)."""
    core.ok("machine", "heartbeat", rid=RID, name="played-by-test", slots=2)
    c_id = core.add_package("trivial", package_zip("trivial"))
    p_id = core.add_project("protocol", project_files("trivial"))
    pool = []

    def next_id():
        if not pool:
            pool.extend(core.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=RID))
        return pool.pop(0)

    return core, next_id


@pytest.fixture
def client(queued, tmp_path):
    mesh, _ = queued
    central = CentralClient(mesh.config, timeout=10, retries=1)
    client = Outbox(central, tmp_path / "outbox", RID)
    yield client
    client.close()
    central.close()


READY = {"state": "READY", "message": "files generated"}


def lingering(client, job_id, changes, expect):
    """Start a report that may wait 60 s in the outbox; return its green thread."""
    thread = eventlet.spawn(client.report, job_id, RID, changes, expect, linger=60)
    wait_for(lambda: len(client._outbox) == 1, 5, interval=0.01, what="the report in the outbox")
    return thread


def outcome(thread):
    """The report's outcome, which must already be known (a batch sent it, not the 60 s timer)."""
    with eventlet.Timeout(5, AssertionError("the report still waits in the outbox")):
        return thread.wait()


def test_a_lingering_report_rides_with_the_next_claim(queued, client):
    mesh, next_id = queued
    first, second = next_id(), next_id()
    assert client.claim(first, RID)["state"] == "PREPARING"
    thread = lingering(client, first, READY, ["PREPARING"])

    claimed = client.claim(second, RID)

    assert (claimed["job_id"], claimed["state"], claimed["rid"]) == (second, "PREPARING", RID)
    assert claimed["package"]["c_id"] == mesh.ok("job", "query", job_id=second)["c_id"]
    assert outcome(thread)["state"] == "READY"
    assert mesh.ok("job", "query", job_id=first)["state"] == "READY"
    assert client._outbox == []


def test_a_refused_report_in_a_batch_leaves_the_claim_standing(queued, client):
    mesh, next_id = queued
    first, second = next_id(), next_id()
    client.claim(first, RID)
    thread = lingering(client, first, {"state": "COMPLETED"}, ["RUNNING"])

    assert client.claim(second, RID)["state"] == "PREPARING"

    with pytest.raises(MirrorError, match=f"job {first} is PREPARING, expected RUNNING"):
        outcome(thread)
    assert mesh.ok("job", "query", job_id=first)["state"] == "PREPARING"


def test_a_refused_claim_in_a_batch_leaves_the_report_standing(queued, client):
    mesh, next_id = queued
    first = next_id()
    client.claim(first, RID)
    thread = lingering(client, first, READY, ["PREPARING"])

    # The batch's reports go first: the claim finds the job READY.
    with pytest.raises(MirrorError, match=f"job {first} is READY, expected QUEUED"):
        client.claim(first, RID)

    assert outcome(thread)["state"] == "READY"


def test_a_lingering_report_goes_alone_when_no_call_comes(queued, client):
    mesh, next_id = queued
    first = next_id()
    client.claim(first, RID)
    thread = eventlet.spawn(client.report, first, RID, READY, ["PREPARING"], linger=0.2)
    with eventlet.Timeout(10, AssertionError("the outbox was never flushed")):
        assert thread.wait()["state"] == "READY"


def test_a_report_made_while_others_linger_takes_them_along(queued, client):
    mesh, next_id = queued
    first, second = next_id(), next_id()
    client.claim(first, RID)
    client.claim(second, RID)
    thread = lingering(client, first, READY, ["PREPARING"])

    done = client.report(second, RID, READY, ["PREPARING"])

    assert done["job_id"] == second and done["state"] == "READY"
    assert outcome(thread)["job_id"] == first


def test_close_sends_what_lingers(queued, tmp_path):
    mesh, next_id = queued
    central = CentralClient(mesh.config, timeout=10, retries=1)
    client = Outbox(central, tmp_path / "outbox", RID)
    first = next_id()
    client.claim(first, RID)
    thread = lingering(client, first, READY, ["PREPARING"])
    client.close()
    assert outcome(thread)["state"] == "READY"
    central.close()


def test_batch_answers_each_report_and_the_claim_on_its_own(queued):
    mesh, next_id = queued
    first, second, third = next_id(), next_id(), next_id()
    mesh.ok("job", "claim", job_id=first, rid=RID)
    reports = [
        {"job_id": first, "changes": READY, "expect": ["PREPARING"]},
        {"job_id": second, "changes": READY, "expect": ["PREPARING"]},
        {"job_id": first},
        {"job_id": 999999, "changes": READY},
    ]

    out = mesh.ok("job", "batch", rid=str(RID), reports=reports, claim=third)

    codes = [code for code, _ in out["reports"]]
    assert codes == [0, -1, -1, -1]
    assert out["reports"][0][1]["state"] == "READY"
    assert out["reports"][1][1] == f"job {second} is QUEUED, expected PREPARING"
    assert out["reports"][2][1].startswith("malformed report ")
    assert out["reports"][3][1] == "job is not existed , job : 999999"
    assert (out["claimed"]["job_id"], out["claim_error"]) == (third, None)
    again = mesh.ok("job", "batch", rid=RID, claim=third)
    assert again == {
        "reports": [],
        "claimed": None,
        "claim_error": f"job {third} is PREPARING, expected QUEUED",
    }


def test_a_claimed_job_whose_package_is_gone_fails_with_the_reason(queued):
    mesh, _ = queued
    c_id = mesh.add_package("vanishing", package_zip("trivial"))
    p_id = mesh.add_project("vanishing", project_files("trivial"))
    job_id, *_ = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id, rid=RID)
    url = mesh.config["DB_URL"] or f"sqlite:///{mesh.tmp / 'data' / 'mirror.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE calc_packages SET ftp_path='' WHERE id=:c"), {"c": c_id})
    engine.dispose()

    out = mesh.ok("job", "batch", rid=RID, claim=job_id)

    reason = f"cannot run: calcpackage is not existed , calcpackage : {c_id}"
    assert out["claimed"] is None and out["claim_error"] == f"job {job_id} {reason}"
    job = mesh.ok("job", "query", job_id=job_id)
    assert (job["state"], job["error"]) == ("FAILED", reason)
