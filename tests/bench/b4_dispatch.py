"""B4: ``jobdispatch.do`` of a 10,000-state parameter file (100 x 100, ``states="product"``).

Dispatched to a resource machine known from one heartbeat but with no agent
(rid 99), so every job stays queued; timed until the call returns. Then the depth of ``mirror.jobs.rid99``
is read with ``rabbitmqctl`` to check that every id was queued: job ids travel
in batches of ``JOBS_PER_MESSAGE`` per message.
"""

import math
import time

from nameko.standalone.rpc import ClusterRpcProxy

from services.central.providers import JOBS_PER_MESSAGE
from tests.bench.common import log, para_xml, queue_depths

SIDE = 100
STATES = SIDE * SIDE
MESSAGES = math.ceil(STATES / JOBS_PER_MESSAGE)
RID = 99
QUEUE = f"mirror.jobs.rid{RID}"
# PostgreSQL gets the bulk inserts of ``storage/bulkinsert.py`` and the tighter target.
TARGET_S = {"sqlite": 3, "postgresql": 1}
UNIT = "s"
TIMEOUT = 240
RPC_TIMEOUT = 120


def run(ctx):
    mesh = ctx.shared()
    c_id = mesh.trivial_c_id()
    para = para_xml({"x": range(1, SIDE + 1), "y": range(1, SIDE + 1)}, mode="product")
    p_id = mesh.add_project("b4-dispatch", {"para.xml": para})
    before = queue_depths(mesh.vhost).get(QUEUE, 0)
    log(f"B4: dispatching {STATES} states to rid {RID} (no agent)")
    with ClusterRpcProxy(mesh.rpc_config, timeout=RPC_TIMEOUT) as cluster:
        # Dispatch refuses an unknown rid: one heartbeat makes the machine known.
        cluster.machine.heartbeat(rid=RID, name="b4", slots=1)
        t0 = time.monotonic()
        code, ids = cluster.jobdispatch.do(p_id=p_id, c_id=c_id, rid=RID)
        elapsed = time.monotonic() - t0
    assert code == 0, f"jobdispatch.do answered {ids!r}"
    log(f"B4: returned {len(ids)} ids in {elapsed:.2f}s")

    # The broker's queue statistics lag by a few seconds.
    depth = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        depth = queue_depths(mesh.vhost).get(QUEUE, 0) - before
        if depth >= MESSAGES:
            break
        ctx.sleep(1)
    target_s = TARGET_S["postgresql" if ctx.args.postgres else "sqlite"]
    return {
        "value": round(elapsed, 3),
        "unit": UNIT,
        "target": f"<= {target_s}",
        "met": elapsed <= target_s and len(ids) == STATES and depth == MESSAGES,
        "reference": None,
        "detail": {
            "states": STATES,
            "ids_returned": len(ids),
            "unique_ids": len(set(ids)),
            "queue": QUEUE,
            "queue_messages": depth,
            "ids_per_message": JOBS_PER_MESSAGE,
            "rate_jobs_per_s": round(STATES / elapsed, 1),
        },
    }
