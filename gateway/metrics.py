"""``GET /metrics``: the gateway's Prometheus metrics, and the mesh's as central reports them.

Counters and histograms fed by the gateway itself (its requests, the events its
hub sees) live in :data:`REGISTRY`, one per process; jobs by state and the
machines' load are read from central at each scrape.
"""

import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from werkzeug.wrappers import Response

from services.common.events import JOB, MACHINE
from services.common.jobstates import FINAL, PREPARING, RUNNING, STATES

from . import mesh

REGISTRY = CollectorRegistry()

REQUEST_SECONDS = Histogram(
    "mirror_gateway_request_seconds",
    "Gateway requests by route and HTTP status, and the seconds they took",
    ["route", "code"],
    registry=REGISTRY,
)
JOB_EVENTS = Counter(
    "mirror_job_events",
    "Job events (every report that changed a job) seen by this gateway, by state",
    ["state"],
    registry=REGISTRY,
)
MACHINE_EVENTS = Counter(
    "mirror_machine_events", "Machine changes seen by this gateway", registry=REGISTRY
)
CLAIM_TO_START = Histogram(
    "mirror_job_claim_to_start_seconds",
    "Seconds from a job's claim (PREPARING) to its first RUNNING",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "mirror_step_duration_seconds",
    "Seconds a step ran, from its RUNNING event to its end, by step",
    ["step"],
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600, 14400),
    registry=REGISTRY,
)

# Jobs and steps being timed at most; past it the oldest are forgotten.
MAX_TIMED = 100000


def observe_request(route, code, seconds):
    """Count one gateway request."""
    REQUEST_SECONDS.labels(route=route, code=str(code)).observe(seconds)


def _when(text):
    return datetime.fromisoformat(text).timestamp()


class EventTimer:
    """Feeds the event counters and histograms from the events the gateway's hub sees."""

    def __init__(self):
        self.claimed = {}  # job id -> claim time
        self.steps = {}  # (job id, step) -> start time

    def __call__(self, event):
        if event.get("kind") == MACHINE:
            MACHINE_EVENTS.inc()
            return
        if event.get("kind") != JOB:
            return
        state, job_id, step = event.get("state"), event.get("job_id"), event.get("step")
        JOB_EVENTS.labels(state=state).inc()
        stamp = _when(event["time"])
        message = event.get("message") or ""
        if state == PREPARING:
            self._remember(self.claimed, job_id, stamp)
        elif state == RUNNING and job_id in self.claimed:
            CLAIM_TO_START.observe(max(0.0, stamp - self.claimed.pop(job_id)))
        if step and message == f"step {step} {RUNNING}":
            self._remember(self.steps, (job_id, step), stamp)
        elif step and message.startswith(f"step {step} ") and (job_id, step) in self.steps:
            STEP_SECONDS.labels(step=step).observe(max(0.0, stamp - self.steps.pop((job_id, step))))
        if state in FINAL:
            self.claimed.pop(job_id, None)

    @staticmethod
    def _remember(table, key, value):
        if len(table) >= MAX_TIMED:
            del table[next(iter(table))]
        table[key] = value


def mesh_families(counts, machines, now=None):
    """Gauges of jobs by state and of each machine's load and heartbeat age."""
    now = time.time() if now is None else now
    jobs = GaugeMetricFamily("mirror_jobs", "Jobs by state", labels=["state"])
    for state in STATES:
        jobs.add_metric([state], counts.get(state, 0))
    families = [jobs]
    gauges = {
        "slots": "Cores the machine offers",
        "used_cores": "Cores in use by its unfinished jobs",
        "running": "Its claimed, unfinished jobs",
        "queued": "Jobs queued on it",
        "online": "1 while it sends heartbeats",
        "heartbeat_age_seconds": "Seconds since its last heartbeat",
    }
    built = {
        key: GaugeMetricFamily(f"mirror_machine_{key}", text, labels=["rid", "name"])
        for key, text in gauges.items()
    }
    for machine in machines:
        labels = [str(machine["rid"]), str(machine.get("name") or "")]
        for key in ("slots", "used_cores", "running", "queued"):
            built[key].add_metric(labels, float(machine.get(key) or 0))
        built["online"].add_metric(labels, 1.0 if machine.get("online") else 0.0)
        beat = machine.get("last_heartbeat")
        if beat:
            built["heartbeat_age_seconds"].add_metric(labels, max(0.0, now - _when(beat)))
    return families + list(built.values())


class _Families:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


def metrics_text(counts, machines):
    """The whole exposition: this gateway's registry, then the mesh's gauges."""
    scrape = CollectorRegistry()
    scrape.register(_Families(mesh_families(counts, machines)))
    return generate_latest(REGISTRY) + generate_latest(scrape)


def handle_metrics(services, timeout):
    """The ``/metrics`` response: central's counts and machines, then the text format."""
    counts = mesh.ask(services, "events", "metrics", {}, timeout)["jobs_by_state"]
    machines = mesh.ask(services, "machine", "list", {}, timeout)
    return Response(metrics_text(counts, machines), mimetype=CONTENT_TYPE_LATEST.split(";")[0])
