"""Names on the broker: per-machine services and job queues."""

from kombu import Exchange, Queue

#: The services every resource machine runs, each as ``<name>_<rid>``.
AGENT_SERVICES = (
    "jobdirbuild",
    "jobfilebuild",
    "jobrun",
    "jobprocessmonitor",
    "jobresultrecovery",
    "jobkill",
    "jobdelete",
)

JOBS_EXCHANGE = Exchange("mirror.jobs", type="direct", durable=True)


def service_name(base, rid):
    """The name of a per-machine service: ``service_name("jobrun", 5) == "jobrun_5"``."""
    return f"{base}_{int(rid)}"


def queue_name(rid):
    """The durable queue that holds the job ids of resource machine ``rid``."""
    return f"mirror.jobs.rid{int(rid)}"


def job_queue(rid):
    """The durable queue of resource machine ``rid`` (declared by both sides)."""
    name = queue_name(rid)
    return Queue(name, exchange=JOBS_EXCHANGE, routing_key=name, durable=True)
