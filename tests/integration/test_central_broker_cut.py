"""Central cut from the broker for longer than ``RECONCILER.lost_after`` judges no machine lost.

The database stays reachable, so the reconciler keeps running its passes; the
heartbeats the agent sends wait on the broker for a consumer. Central asks the
broker, through its own connection, whether heartbeats reach it before it
judges any machine (``services/central/watch.py``).
"""

import pytest
import yaml

from services.central.watch import heartbeat_consumers
from tests.integration.sweeps import steps_package, sweep_para
from tests.integration.test_agent_outage import assert_completed_untouched
from tests.mesh import Mesh, wait_for
from tests.tcpcut import CutterProcess

LOST_AFTER = 5
STEPS = (
    '<ExeArgument id="one" type="exec" value="sleep 15" priority="1"/>'
    '<ExeArgument id="two" type="exec" value="true" priority="2"/>'
)


def start_central_through(mesh, amqp_uri):
    """Start central with ``amqp_uri`` for its broker; everything else uses the mesh's own."""
    config_path = mesh.tmp / "central.yaml"
    config_path.write_text(yaml.safe_dump({**mesh.config, "AMQP_URI": amqp_uri}))
    direct, mesh.config_path = mesh.config_path, config_path
    try:
        mesh.start("central", "central")
    finally:
        mesh.config_path = direct
    mesh.start("ftp", "ftp")
    mesh.start("gateway", "gateway")
    wait_for(
        lambda: mesh.check_alive() or mesh.rpc("machine", "list")[0] == 0,
        60,
        what="central services",
    )


def test_heartbeat_consumers_asks_the_broker(tmp_path, amqp_uri):
    # The fixture's vhost has no mesh: nobody declared the heartbeat queue.
    assert heartbeat_consumers({"AMQP_URI": amqp_uri}) == 0
    closed = amqp_uri.replace(":5672/", ":1/")
    with pytest.raises(OSError):
        heartbeat_consumers({"AMQP_URI": closed}, timeout=1)


def test_central_cut_from_the_broker_longer_than_lost_after_moves_no_job(tmp_path, amqp_uri):
    mesh = Mesh(
        tmp_path,
        amqp_uri,
        RPC={"timeout": 3, "retries": 1},
        RECONCILER={"interval": 1, "lost_after": LOST_AFTER},
    )
    cutter = CutterProcess()
    try:
        central_uri = mesh.config["AMQP_URI"].replace(":5672/", f":{cutter.port}/")
        assert str(cutter.port) in central_uri
        start_central_through(mesh, central_uri)
        mesh.start_agent(1, autorun=True, slots=1)
        assert heartbeat_consumers(mesh.config) >= 1
        c_id = steps_package(mesh, "cut", STEPS)
        p_id = mesh.add_project("cut", {"para.xml": sweep_para([1])})
        (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
        mesh.wait_state(job_id, "RUNNING")

        seen = len(mesh.log("central"))
        cutter.cut()
        # Machine 1 beats on, unheard: once it is silent for lost_after by the
        # database, the reconciler comes to judge it. It must ask the broker,
        # fail to reach it, and wait, not move the job.
        log = wait_for(
            lambda: [
                line
                for line in mesh.log("central")[seen:].splitlines()
                if "broker unreachable" in line or "stopped sending heartbeats" in line
            ],
            LOST_AFTER + 30,
            what="the reconciler to come to judge machine 1",
        )
        assert "broker unreachable" in log[0], log
        cutter.restore()

        assert_completed_untouched(mesh, job_id, seen, timeout=90)
    finally:
        mesh.close()
        cutter.close()
