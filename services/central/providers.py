"""Dependency providers of the central services: the database storage, the job queues, the caller.

Each provider builds its clients once per container and gives every worker a
small object with only what a service uses, never the provider itself.
"""

import logging
from dataclasses import dataclass

from nameko.amqp.publish import Publisher
from nameko.extensions import DependencyProvider

from db.session import make_engine, make_sessionmaker
from services.central.storage.catalog import Catalog
from services.central.storage.elsewhere import stale_after
from services.central.storage.exclusive import Exclusive
from services.central.storage.jobstore import JobStore
from services.central.storage.outbox import Outbox
from services.central.storage.registry import Registry
from services.central.storage.removal import Removal
from services.central.storage.requests import RequestLog
from services.central.storage.submissions import Submissions
from services.central.storage.sweeps import SweepStore
from services.central.storage.tables import ResultTables
from services.central.storage.users import Users
from services.common.identity import identity_of
from services.common.names import JOBS_EXCHANGE, job_queue
from services.filestore import FileStore

log = logging.getLogger(__name__)

# Job ids per message: one confirmed publish per job would cap dispatch at
# about a thousand jobs a second.
JOBS_PER_MESSAGE = 1000


@dataclass(frozen=True)
class Storage:
    """What a central worker reads and writes: the storage wrappers over one engine."""

    catalog: Catalog
    jobs: JobStore
    machines: Registry
    requests: RequestLog
    outbox: Outbox
    submissions: Submissions
    users: Users
    removal: Removal
    tables: ResultTables
    sweeps: SweepStore
    exclusive: Exclusive


class Database(DependencyProvider):
    """One engine and file store per container; each worker gets the ``Storage`` over them."""

    def setup(self):
        config = self.container.config
        self.engine = make_engine(config["DB_URL"])
        Session = make_sessionmaker(self.engine)
        self.files = FileStore(config["FTP"])
        catalog = Catalog(Session, self.files)
        jobs = JobStore(Session, stale_after(config["AGENT"]))
        self.storage = Storage(
            catalog=catalog,
            jobs=jobs,
            machines=Registry(Session, jobs, config["AGENT"]),
            requests=RequestLog(Session),
            outbox=Outbox(Session),
            submissions=Submissions(catalog),
            users=Users(Session),
            removal=Removal(Session, self.files),
            tables=ResultTables(Session),
            sweeps=SweepStore(Session),
            exclusive=Exclusive(self.engine),
        )

    def stop(self):
        self.files.close()
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        # Shared by the workers: the wrappers hold no per-call state, and the
        # submissions' ids and the parsed adapters are worth keeping.
        return self.storage


class QueuePublisher:
    """Publishes job ids on the durable queue of their machine, as persistent messages."""

    def __init__(self, publisher):
        self.publisher = publisher

    def publish(self, rid, jobs):
        """Publish ``(job_id, ncpus)`` pairs on the queue of machine ``rid``, in batches."""
        queue = job_queue(rid)
        for start in range(0, len(jobs), JOBS_PER_MESSAGE):
            batch = jobs[start : start + JOBS_PER_MESSAGE]
            self.publisher.publish(
                {"jobs": [[job_id, ncpus] for job_id, ncpus in batch]},
                exchange=JOBS_EXCHANGE,
                routing_key=queue.routing_key,
                # Declaring once per call is enough: the queue is durable.
                declare=[queue] if start == 0 else [],
            )
        log.info("published %d job(s) on %s", len(jobs), queue.name)


class JobQueues(DependencyProvider):
    """One AMQP publisher per container; each worker gets the ``QueuePublisher`` over it."""

    def setup(self):
        publisher = Publisher(self.container.config["AMQP_URI"], delivery_mode=2, serializer="json")
        self.queues = QueuePublisher(publisher)

    def get_dependency(self, worker_ctx):
        return self.queues


class Caller(DependencyProvider):
    """Each worker gets the :class:`~services.common.identity.Identity` of its caller.

    It comes from the call's context data: the gateway names the user it
    authenticated there; a call that names nobody comes from inside the mesh
    and acts as the built-in admin ``local``.
    """

    def get_dependency(self, worker_ctx):
        return identity_of(worker_ctx.data)
