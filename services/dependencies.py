"""Dependency providers: the database, the file store and the job queues."""

import logging

from nameko.amqp.publish import Publisher
from nameko.extensions import DependencyProvider

from services.common.names import JOBS_EXCHANGE, job_queue
from services.filestore import FileStore

log = logging.getLogger(__name__)


class Files(DependencyProvider):
    """A pooled FTP client with the writing account."""

    def setup(self):
        self.store = FileStore(self.container.config["FTP"])

    def stop(self):
        self.store.close()

    def get_dependency(self, worker_ctx):
        return self.store


class Database(DependencyProvider):
    """The central storage wrappers, over one engine per container."""

    def setup(self):
        # Imported here so that agents, which never touch the database, need no driver.
        from db.session import make_engine, make_sessionmaker
        from services.central.catalog import Catalog
        from services.central.jobstore import JobStore
        from services.central.registry import Registry
        from services.central.submissions import Submissions

        config = self.container.config
        self.engine = make_engine(config["DB_URL"])
        Session = make_sessionmaker(self.engine)
        self.files = FileStore(config["FTP"])
        self.catalog = Catalog(Session, self.files)
        self.jobs = JobStore(Session)
        self.machines = Registry(Session, self.jobs, config["AGENT"])
        self.submissions = Submissions(self.catalog)

    def stop(self):
        self.files.close()
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self


class JobQueues(DependencyProvider):
    """Publishes job ids on the durable queue of their machine, as persistent messages."""

    def setup(self):
        self.publisher = Publisher(
            self.container.config["AMQP_URI"], delivery_mode=2, serializer="json"
        )

    def get_dependency(self, worker_ctx):
        return self

    # Job ids per message: one confirmed publish per job would cap dispatch at
    # about a thousand jobs a second.
    BATCH = 1000

    def publish(self, rid, jobs):
        """Publish ``(job_id, ncpus)`` pairs on the queue of machine ``rid``, in batches."""
        queue = job_queue(rid)
        for start in range(0, len(jobs), self.BATCH):
            batch = jobs[start : start + self.BATCH]
            self.publisher.publish(
                {"jobs": [[job_id, ncpus] for job_id, ncpus in batch]},
                exchange=JOBS_EXCHANGE,
                routing_key=queue.routing_key,
                # Declaring once per call is enough: the queue is durable.
                declare=[queue] if start == 0 else [],
            )
        log.info("published %d job(s) on %s", len(jobs), queue.name)
