"""The soak run: a sweep over two agents and two central processes on PostgreSQL, under faults.

It dispatches one sweep of ``jobs`` states of a short two-step package, injects
a fault every few seconds for ``seconds`` (or until every job has ended), mends
everything, waits for the jobs to settle, and answers one verdict
(tests/chaos/report.py) with the faults by kind and the wall time.
"""

import contextlib
import datetime
import logging
import random
import tempfile
import time

from tests.chaos.faults import Injector
from tests.chaos.report import judge
from tests.chaos.servers import processes_of, reset_rpc
from tests.integration.sweeps import steps_package, sweep_para
from tests.mesh import Mesh, create_pg_database, drop_pg_database
from tests.tcpcut import CutterProcess

BROKER = "amqp://guest:guest@127.0.0.1:5672/"
STEPS = (
    '<ExeArgument id="a" type="shell" value="sleep 0.2" priority="1"/>'
    '<ExeArgument id="b" type="exec" value="true" priority="2"/>'
)
AGENTS = (1, 2)
CENTRALS = ("central", "central2")
FINISHED = ("COMPLETED", "FAILED", "KILLED")
log = logging.getLogger("chaos")


def call(mesh, service, method, timeout=120, **kwargs):
    """``mesh.ok`` that rides out a broken client or a central restarting, until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return mesh.ok(service, method, **kwargs)
        except Exception:
            reset_rpc(mesh)
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def unfinished(mesh, p_id):
    jobs = call(mesh, "project", "getalljob", p_id=p_id)
    return sum(j["state"] not in FINISHED for j in jobs)


def start_mesh(tmp, db_url, cut):
    mesh = Mesh(tmp, BROKER, db_url)
    mesh.start_core()
    mesh.start(CENTRALS[1], "central")
    cutters = {}
    for rid in AGENTS:
        uri = None
        if cut:
            cutters[rid] = CutterProcess()
            uri = mesh.config["AMQP_URI"].replace(":5672/", f":{cutters[rid].port}/")
        mesh.start_agent(rid, autorun=True, slots=4, amqp_uri=uri, wait=False)
    for rid in AGENTS:
        mesh.wait_online(rid)
    return mesh, cutters


def soak(jobs, seconds, kinds, settle=300, seed=None):
    """Run the soak; answer its verdict as a dict."""
    started = time.monotonic()
    db_name, db_url = create_pg_database()
    mesh, cutters = None, {}
    try:
        with tempfile.TemporaryDirectory(prefix="mirror-chaos-") as tmp:
            mesh, cutters = start_mesh(tmp, db_url, "cut" in kinds)
            c_id = steps_package(mesh, "chaos", STEPS)
            p_id = mesh.add_project("chaos", {"para.xml": sweep_para(range(jobs))})
            dispatched = len(mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id))
            log.info("dispatched %d job(s)", dispatched)
            injector = Injector(mesh, kinds, AGENTS, CENTRALS, cutters, seed)
            chaos_end = time.monotonic() + seconds
            rand = random.Random(seed)
            while time.monotonic() < chaos_end and unfinished(mesh, p_id):
                time.sleep(rand.uniform(2, 5))
                injector.inject()
            injector.revive()
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline and unfinished(mesh, p_id):
                time.sleep(2)
                injector.revive()
            ids = [j["job_id"] for j in call(mesh, "project", "getalljob", p_id=p_id)]
            end = time.monotonic() + 30
            while processes_of(mesh, ids) and time.monotonic() < end:
                time.sleep(1)
            verdict = judge(mesh, [p_id], jobs, steps=("a", "b"))
            verdict.update(
                faults=dict(injector.done),
                restarted=dict(injector.restarted),
                wall_s=round(time.monotonic() - started, 1),
                date=datetime.date.today().isoformat(),
            )
            with contextlib.suppress(Exception):
                mesh.close()
            mesh = None
            return verdict
    finally:
        if mesh is not None:
            with contextlib.suppress(Exception):
                mesh.close()
        for cutter in cutters.values():
            cutter.close()
        drop_pg_database(db_name)
