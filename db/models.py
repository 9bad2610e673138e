"""SQLAlchemy models of machines, projects, packages, jobs, steps, events and requests."""

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.identity import LOCAL_NAME
from services.common.jobstates import PENDING, QUEUED


def utcnow():
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON, list: JSON}


class Machine(Base):
    """A resource machine, known from its agent's heartbeats.

    Its running jobs and cores in use are counted from ``jobs`` when asked
    (``Registry.list``), so they are never stale.
    """

    __tablename__ = "machines"

    rid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200), default="")
    slots: Mapped[int] = mapped_column(Integer, default=1)
    tags: Mapped[list] = mapped_column(default=list)
    autorun: Mapped[bool] = mapped_column(default=False)
    # Directories under which submitted scripts may set their working directory and output.
    roots: Mapped[list] = mapped_column(default=list)
    started_at: Mapped[datetime | None]
    last_heartbeat: Mapped[datetime | None]
    # A Slurm-executor machine's last sinfo/squeue probe (see services/agent/probe.py).
    slurm: Mapped[dict | None] = mapped_column(JSON, nullable=True)


# On SQLite, AUTOINCREMENT keeps ids from being reused after the newest row
# is deleted: a user holding an old job id must never reach another job.
NO_REUSE = {"sqlite_autoincrement": True}


class User(Base):
    """A person who calls through the gateway: a bearer token and a password, hashed only."""

    __tablename__ = "users"
    __table_args__ = (NO_REUSE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # sha256 of the user's one bearer token; a new token replaces it.
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created: Mapped[datetime] = mapped_column(default=utcnow)
    revoked: Mapped[datetime | None]


def owner_column():
    """The user name a record belongs to (``local``: the built-in admin)."""
    return mapped_column(String(64), default=LOCAL_NAME, server_default=LOCAL_NAME)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (NO_REUSE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = owner_column()
    created: Mapped[datetime] = mapped_column(default=utcnow)
    files: Mapped[list["ProjectFile"]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="ProjectFile.name"
    )


class ProjectFile(Base):
    """One input file of a project; its bytes live on the file server at ``ftp_path``."""

    __tablename__ = "project_files"
    __table_args__ = (UniqueConstraint("project_id", "name"), NO_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    ftp_path: Mapped[str] = mapped_column(String(1000))
    uploaded: Mapped[datetime] = mapped_column(default=utcnow)
    project: Mapped[Project] = relationship(back_populates="files")


class CalcPackage(Base):
    """A calculation package: the zip on the file server plus its adapter text.

    ``version`` is the ``<Adapter version>`` attribute; ``package_version``
    counts the registrations of one name by one owner (1, 2, ...). A deleted
    package keeps its row with an empty ``ftp_path``, so a version is never reused.
    """

    __tablename__ = "calc_packages"
    __table_args__ = (
        Index("uq_calc_packages_version", "owner", "name", "package_version", unique=True),
        NO_REUSE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    package_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    adapter_name: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[str] = mapped_column(String(50), default="")
    adapter_xml: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    ftp_path: Mapped[str] = mapped_column(String(1000))
    owner: Mapped[str] = owner_column()
    # Usable by every user, not only its owner (every package an admin registers).
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """One state of a dispatched project, with its resolved parameters."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_rid", "state", "rid"),
        # The lists' filters with their order (newest first): a page reads only its rows.
        Index("ix_jobs_project_id", "project_id", "id"),
        Index("ix_jobs_owner_id", "owner", "id"),
        Index("ix_jobs_state_id", "state", "id"),
        Index("ix_jobs_rid_id", "rid", "id"),
        Index("ix_jobs_name_id", "name", "id"),
        Index("ix_jobs_sweep_state", "sweep_id", "state"),
        NO_REUSE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    package_id: Mapped[int] = mapped_column(ForeignKey("calc_packages.id", ondelete="CASCADE"))
    para_name: Mapped[str] = mapped_column(String(500), default="para.xml")
    state_index: Mapped[int] = mapped_column(Integer, default=0)
    state_name: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict] = mapped_column(default=dict)
    ncpus: Mapped[int] = mapped_column(Integer, default=1)
    time_limit: Mapped[float | None] = mapped_column(Float)
    tags: Mapped[list] = mapped_column(default=list)
    owner: Mapped[str] = owner_column()
    # Set by script submissions (REST, client): a name, an idempotency key,
    # free metadata, and how the process runs.
    name: Mapped[str] = mapped_column(String(200), default="")
    submission_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    meta: Mapped[dict] = mapped_column(default=dict)
    environment: Mapped[dict] = mapped_column(default=dict)
    workdir: Mapped[str | None] = mapped_column(Text)
    stdout_path: Mapped[str | None] = mapped_column(Text)
    stderr_path: Mapped[str | None] = mapped_column(Text)
    rid: Mapped[int | None] = mapped_column(Integer)
    # Dispatched to its machine by rid: it waits for that machine, never moves.
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When its id was last handed to the outbox for its machine's queue.
    published_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(20), default=QUEUED)
    step: Mapped[str | None] = mapped_column(String(200))
    path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    pid_start: Mapped[float | None] = mapped_column(Float)
    process: Mapped[dict] = mapped_column(default=dict)
    result: Mapped[dict] = mapped_column(default=dict)
    # Slurm executor: the batch job of the latest step (job_id, nodelist, partition, step).
    slurm: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # Its ``job_id``, where the NEWT API looks a Slurm machine's job up by Slurm's id.
    slurm_id: Mapped[int | None] = mapped_column(Integer, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The sweep (dispatch or submission batch) the job belongs to.
    sweep_id: Mapped[int | None] = mapped_column(Integer)
    # Automatic retries used (MAX_RETRIES); a user's retry does not count.
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    submit_time: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    progress_at: Mapped[datetime | None]
    start_time: Mapped[datetime | None]
    end_time: Mapped[datetime | None]
    updated: Mapped[datetime] = mapped_column(default=utcnow)
    steps: Mapped[list["JobStep"]] = relationship(
        cascade="all, delete-orphan", order_by="JobStep.position", lazy="selectin"
    )


class Sweep(Base):
    """The jobs of one dispatch (or one batch of script submissions), acted on as one."""

    __tablename__ = "sweeps"
    __table_args__ = (Index("ix_sweeps_owner", "owner"), NO_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = owner_column()
    project_id: Mapped[int | None] = mapped_column(Integer)
    package_id: Mapped[int | None] = mapped_column(Integer)
    para_name: Mapped[str] = mapped_column(String(500), default="")
    # "dispatch" or "submit".
    kind: Mapped[str] = mapped_column(String(20), default="dispatch")
    # At most this many of its jobs past QUEUED at once (0: no limit).
    max_running: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Jobs per value of each parameter that varies, counted at dispatch.
    value_counts: Mapped[dict | None] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class JobStep(Base):
    """One adapter step of a job, with its times and exit code."""

    __tablename__ = "job_steps"
    __table_args__ = (UniqueConstraint("job_id", "step_id"), NO_REUSE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default=PENDING)
    start_time: Mapped[datetime | None]
    end_time: Mapped[datetime | None]
    exit_code: Mapped[int | None] = mapped_column(Integer)


class JobEvent(Base):
    """One transition of a job, appended and never changed."""

    __tablename__ = "job_events"
    __table_args__ = (NO_REUSE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(20))
    step: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text, default="")
    # The attempt (the job's claim count) a report was made under; None
    # for events outside any attempt (dispatch, a queued job cancelled).
    attempt: Mapped[int | None] = mapped_column(Integer)


class Request(Base):
    """The first answer of a creation call, so that a repeat answers it again.

    ``request_id`` is the caller's idempotency key, or ``amqp:<correlation
    id>`` for a call without one: a broker redelivers an unacknowledged
    request with its correlation id.
    """

    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("caller", "request_id"),
        Index("ix_requests_created", "created"),
        NO_REUSE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(100))
    result: Mapped[dict | list | int | None] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEntry(Base):
    """A placed job whose id must still be published on its machine's queue.

    Written in the transaction that places the job, deleted once published:
    a central stopped between the two publishes it at its next drain.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(Integer, index=True)
    rid: Mapped[int] = mapped_column(Integer)
    ncpus: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class Cleanup(Base):
    """A deleted job whose directory machine ``rid`` still has to remove."""

    __tablename__ = "cleanups"

    job_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rid: Mapped[int] = mapped_column(Integer, index=True)
    created: Mapped[datetime] = mapped_column(default=utcnow)
