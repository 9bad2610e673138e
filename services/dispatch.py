"""The ``jobdispatch`` service: split a project's parameter file into queued jobs."""

import logging
from collections import defaultdict

from adapters.adapter import parse_adapter
from adapters.params import parse_params
from services.dependencies import Database, JobQueues
from services.rpcutil import mirror_rpc, to_int

log = logging.getLogger(__name__)


class JobDispatchService:
    name = "jobdispatch"

    db = Database()
    queues = JobQueues()

    @mirror_rpc
    def do(self, p_id, c_id, para_name="para.xml", rid=None, tags=None):
        p_id, c_id = to_int(p_id, "p_id"), to_int(c_id, "c_id")
        rid = to_int(rid, "rid", optional=True)
        tags = [t for t in (tags.split(",") if isinstance(tags, str) else tags or []) if t]
        catalog = self.db.catalog
        with catalog.Session() as session:
            catalog.get_project(session, p_id)
            package = catalog.get_package(session, c_id)
            adapter_xml = package.adapter_xml
        adapter = parse_adapter(adapter_xml.encode("utf-8"), "adapter.xml")
        states = parse_params(catalog.read_project_file(p_id, para_name), para_name)
        if rid is not None:
            placements = [rid] * len(states)
        else:
            ncpus = max(int(s.params.get("NCPUS", 1)) for s in states)
            placements = self.db.machines.choose(len(states), ncpus, tags)
        ids = self.db.jobs.create(p_id, c_id, para_name, states, adapter.step_ids, placements, tags)
        by_machine = defaultdict(list)
        for job_id, state, machine in zip(ids, states, placements, strict=True):
            if machine is not None:
                by_machine[machine].append((job_id, int(state.params.get("NCPUS", 1))))
        for machine, job_ids in by_machine.items():
            self.queues.publish(machine, job_ids)
        log.info("Project<%s> dispatched with CalcPackage<%s>: %d job(s)", p_id, c_id, len(ids))
        return ids
