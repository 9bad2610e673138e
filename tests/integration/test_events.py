"""The event stream, files and metrics over HTTP, on a real mesh with users ann and bob.

One mesh (SQLite): central (with the event relay), gateway, file server and an
autorun agent. ann runs the bundled demo; bob must see none of it.
"""

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.bundled import package_zip, project_files
from services.client import Mirror
from services.client.eventstream import StreamUnavailable
from services.common.jobstates import COMPLETED, FINAL, QUEUED
from tests.integration.test_users import Caller, new_user
from tests.mesh import ROOT, Mesh, new_vhost, rabbitmqctl, wait_for


def b64(data):
    return base64.b64encode(data).decode()


class Stream:
    """A ``GET /events`` connection read in a thread: its job events, in arrival order."""

    def __init__(self, mesh, token, query="", last_id=None):
        host, port = mesh.config["GATEWAY"]["address"].rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        self.conn.request("GET", "/events" + query, headers=headers)
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.read()
        assert self.response.getheader("Content-Type").startswith("text/event-stream")
        self.events, self.machines, self.lines = [], [], []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        fields = {}
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                if line == "":
                    if "data" in fields:
                        event = json.loads(fields["data"])
                        if fields.get("event") == "job":
                            assert fields["id"] == str(event["id"])
                            self.events.append(event)
                        else:
                            self.machines.append(event)
                    fields = {}
                elif not line.startswith(":") and ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.lstrip(" ")
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # the socket was shut down: the stream is over

    def job_states(self, job_id):
        return [e["state"] for e in self.events if e["job_id"] == job_id]

    def close(self):
        # The reader thread owns the response: end it by shutting the socket down.
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.conn.close()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, amqp_uri):
    mesh = Mesh(
        tmp_path_factory.mktemp("events"),
        amqp_uri,
        GATEWAY={"users": True, "auth_cache": 0.5},
    )
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True)
        mesh.demo_c_id = mesh.add_package("demo", package_zip("demo"))
        yield mesh
    finally:
        mesh.close()


@pytest.fixture(scope="module")
def people(mesh):
    tokens = {"ann": new_user(mesh, "ann"), "bob": new_user(mesh, "bob")}
    return {name: (Caller(mesh, token), token) for name, token in tokens.items()}


def run_demo(mesh, caller):
    """ann's own demo project dispatched with the shared demo package: the job ids."""
    p_id = caller.ok("project-new", name="demo")
    for name, data in project_files("demo").items():
        caller.ok("project-upload", p_id=p_id, name=name, content=b64(data))
    return p_id, caller.ok("jobdispatch-do", p_id=p_id, c_id=mesh.demo_c_id)


def all_final(stream, ids):
    return all(any(s in FINAL for s in stream.job_states(j)) for j in ids)


@pytest.fixture(scope="module")
def demo(mesh, people):
    """ann's demo, followed live by ann (filtered by project) and by bob (no filter)."""
    ann, ann_token = people["ann"]
    bob, bob_token = people["bob"]
    ann_all = Stream(mesh, ann_token)
    bob_all = Stream(mesh, bob_token)
    # The relay starts at the newest event: ann's stream is live once it sees anything.
    p_id, ids = run_demo(mesh, ann)
    wait_for(lambda: all_final(ann_all, ids), 120, what="the demo's final events")
    # bob's own job, followed to its end on bob's stream: by then ann's events
    # would have reached bob's stream too, were they sent to it.
    bob_job = int(bob.ok("jobdispatch-submit", script="echo bob", name="bob"))
    wait_for(lambda: COMPLETED in bob_all.job_states(bob_job), 60, what="bob's job completed")
    ann_all.close()
    bob_all.close()
    return {"p_id": p_id, "ids": ids, "ann": ann_all, "bob": bob_all, "bob_job": bob_job}


def test_a_stream_carries_each_transition_once_in_order(mesh, demo):
    ann = demo["ann"]
    for job_id in demo["ids"]:
        states = ann.job_states(job_id)
        assert states[0] == QUEUED
        assert states[-1] == COMPLETED
        assert "RUNNING" in states and "PREPARING" in states
        ids = [e["id"] for e in ann.events if e["job_id"] == job_id]
        assert ids == sorted(set(ids))
        # Exactly the event log, as ann may read it.
        logged = mesh.ok("job", "events", job_id=job_id)
        assert [(e["state"], e["message"]) for e in logged] == [
            (e["state"], e["message"]) for e in ann.events if e["job_id"] == job_id
        ]
    assert {e["owner"] for e in ann.events} == {"ann"}


def test_another_user_gets_none_of_them(demo):
    bob = demo["bob"]
    assert bob.job_states(demo["bob_job"])[-1] == COMPLETED
    assert {e["owner"] for e in bob.events} == {"bob"}
    assert not {e["job_id"] for e in bob.events} & set(demo["ids"])


def test_resuming_misses_nothing_and_repeats_nothing(mesh, people, demo):
    ann_token = people["ann"][1]
    ann = people["ann"][0]
    seen = [e for e in demo["ann"].events if e["job_id"] in demo["ids"]]
    middle = seen[len(seen) // 2]["id"]
    query = f"?project={demo['p_id']}"
    resumed = Stream(mesh, ann_token, query, last_id=middle)
    try:
        wanted = [e["id"] for e in seen if e["id"] > middle]
        wait_for(lambda: len(resumed.events) >= len(wanted), 30, what="the replay")
        assert [e["id"] for e in resumed.events] == wanted
        # Then live: a new job of the project comes on the same stream, once each.
        new_ids = ann.ok("jobdispatch-do", p_id=demo["p_id"], c_id=mesh.demo_c_id)
        wait_for(lambda: all_final(resumed, new_ids), 120, what="live events")
        got = [e["id"] for e in resumed.events]
        assert got == sorted(set(got))
        for job_id in new_ids:
            assert resumed.job_states(job_id)[0] == QUEUED
            assert resumed.job_states(job_id)[-1] == COMPLETED
    finally:
        resumed.close()
    # ?after= does the same as the header.
    again = Stream(mesh, ann_token, f"{query}&after={middle}&state=COMPLETED")
    try:
        wait_for(lambda: len(again.events) >= len(demo["ids"]), 30, what="completed events")
        assert {e["state"] for e in again.events} == {COMPLETED}
    finally:
        again.close()


def test_a_sweep_filter_replays_and_follows_that_sweep_alone(mesh, people, demo):
    ann, ann_token = people["ann"]
    sweep_id = mesh.ok("job", "query", job_id=demo["ids"][0])["sweep_id"]
    other = ann.ok("jobdispatch-do", p_id=demo["p_id"], c_id=mesh.demo_c_id)
    assert mesh.ok("job", "query", job_id=other[0])["sweep_id"] != sweep_id
    replay = Stream(mesh, ann_token, f"?sweep={sweep_id}", last_id=0)
    try:
        wanted = [e["id"] for e in demo["ann"].events if e["job_id"] in demo["ids"]]
        wait_for(lambda: len(replay.events) >= len(wanted), 30, what="the sweep's events")
        # Live too: the other sweep's jobs end while the stream is open, unseen.
        for job_id in other:
            mesh.wait_state(job_id, FINAL, timeout=120)
        assert [e["id"] for e in replay.events] == wanted
        assert {e["sweep"] for e in replay.events} == {sweep_id}
    finally:
        replay.close()


def test_stream_refuses_a_bad_filter_and_a_missing_token(mesh, people):
    token = people["ann"][1]
    status, body = mesh.http("/events", {"state": "DREAMING", "token": token})
    assert status == 400 and "unknown job state 'DREAMING'" in body["detail"]
    status, body = mesh.http("/events")
    assert status == 401


def test_files_serve_a_jobs_results_to_its_owner_alone(mesh, people, demo):
    ann, ann_token = people["ann"]
    bob, bob_token = people["bob"]
    job_id = demo["ids"][0]
    data = ann.ok("jobgetdata-do", job_id=job_id)
    assert data["result"], data
    key, url = next(iter(data["result"].items()))
    with urllib.request.urlopen(url, timeout=30) as resp:
        expected = resp.read()
    base = mesh.base_url + f"/files/jobs/{job_id}/result/{key}"
    request = urllib.request.Request(base, headers={"Authorization": f"Bearer {ann_token}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.read() == expected
        assert "attachment" in resp.headers["Content-Disposition"]
    for path, token in (
        (f"/files/jobs/{job_id}/result/{key}", bob_token),
        (f"/files/jobs/{job_id}/result/no-such-key", ann_token),
        (f"/files/jobs/987654/result/{key}", ann_token),
    ):
        status, body = mesh.http(path, headers={"Authorization": f"Bearer {token}"})
        assert status == 404, (path, body)


def test_metrics_hold_jobs_by_state_and_what_the_gateway_saw(mesh, people, demo):
    request = urllib.request.Request(
        mesh.base_url + "/metrics", headers={"Authorization": f"Bearer {people['ann'][1]}"}
    )
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(request, timeout=30) as resp:
            text = resp.read().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        events = families.get("mirror_job_events")
        if events or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    jobs = {s.labels["state"]: s.value for s in families["mirror_jobs"].samples}
    assert jobs[COMPLETED] >= len(demo["ids"])
    machines = {s.labels["rid"]: s.value for s in families["mirror_machine_slots"].samples}
    assert machines["1"] == 4
    assert "mirror_machine_heartbeat_age_seconds" in families
    completed = [
        s.value
        for s in families["mirror_job_events"].samples
        if s.name.endswith("_total") and s.labels["state"] == COMPLETED
    ]
    assert completed and completed[0] >= len(demo["ids"])
    starts = families["mirror_job_claim_to_start_seconds"].samples
    assert any(s.name.endswith("_count") and s.value >= len(demo["ids"]) for s in starts)
    routes = {s.labels.get("route") for s in families["mirror_gateway_request_seconds"].samples}
    assert "/proxy" in routes and "/events" in routes


def test_client_events_come_straight_from_the_broker(mesh, amqp_uri):
    with Mirror(mesh.config["AMQP_URI"], mesh.exchange) as client:
        p_id = client.new_project("client-demo")
        for name, data in project_files("demo").items():
            client.upload(p_id, name, data)
        with client.events(project=p_id) as events:
            ids = client.dispatch(p_id, mesh.demo_c_id)
            got = []
            deadline = time.monotonic() + 120
            while not all(any(e["job_id"] == j and e["state"] in FINAL for e in got) for j in ids):
                assert time.monotonic() < deadline, got
                event = events.next(timeout=5)
                if event is not None:
                    got.append(event)
        for job_id in ids:
            states = [e["state"] for e in got if e["job_id"] == job_id]
            assert states[0] == QUEUED and states[-1] == COMPLETED
        assert {e["p_id"] for e in got} == {p_id}
        # The recorded events of one job, as before.
        assert client.events(ids[0])[0]["state"] == QUEUED
        assert [r["state"] for r in client.wait(ids, timeout=30)] == [COMPLETED] * len(ids)
        done = subprocess_watch(mesh, ids)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"job {ids[0]} COMPLETED" in done.stdout
    # A broker where no central ever published: no stream, and waiting polls.
    vhost, uri = new_vhost(amqp_uri)
    try:
        with Mirror(uri, mesh.exchange) as lonely:
            with pytest.raises(StreamUnavailable):
                lonely.events(job=1)
            assert lonely.job_stream([1]) is None
    finally:
        rabbitmqctl("delete_vhost", vhost)


def subprocess_watch(mesh, ids):
    """``mirror watch IDS --config FILE``, the options after the command."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "watch", *map(str, ids)]
        + ["--config", str(mesh.config_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
