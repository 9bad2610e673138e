"""Autorun faults that need a mesh of their own: database connections killed, the broker's
consumer timeout, no machine online, a machine that stops answering."""

import signal

from adapters.bundled import package_zip, project_files
from services.common.jobstates import FINAL
from tests.integration.sweeps import (
    FAST_DEMO,
    deliveries_processed,
    step_starts,
    steps_package,
    sweep_para,
    wait_all,
)
from tests.mesh import (
    Mesh,
    broker_consumer_timeout,
    create_pg_database,
    drop_pg_database,
    wait_for,
)
from tests.stepprocs import job_processes


def test_postgres_connections_killed_mid_sweep(tmp_path, amqp_uri):
    import sqlalchemy as sa

    from tests.mesh import PG_ADMIN

    name, url = create_pg_database()
    mesh = Mesh(tmp_path, amqp_uri, url)
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, env=FAST_DEMO)
        c_id = mesh.add_package("demo", package_zip("demo"))
        files = dict(project_files("demo"))
        files["para.xml"] = sweep_para(
            range(1, 13),
            name="iterations",
            extra='<Param name="model" type="file">wing.dat</Param><Param name="mach" type="float">0.5</Param><Param name="alpha" type="float">1</Param>',
        )
        ids = mesh.ok("jobdispatch", "do", p_id=mesh.add_project("pg", files), c_id=c_id)
        others = "FROM pg_stat_activity WHERE datname=:d AND pid <> pg_backend_pid()"

        def backends(select):
            with admin.connect() as conn:
                return conn.execute(sa.text(f"SELECT {select} {others}"), {"d": name}).scalar()

        killed = 0
        for _ in range(8):
            # The pool opens connections again lazily: each round waits for one.
            wait_for(lambda: backends("count(*)"), 30, interval=0.05, what="a connection to kill")
            killed += backends("count(pg_terminate_backend(pid))")
        # A connection may close on its own between the two queries of a round.
        assert killed >= 4
        jobs = wait_all(mesh, ids, timeout=180)
        assert [j["state"] for j in jobs] == ["COMPLETED"] * 12, [j["error"] for j in jobs]
    finally:
        mesh.close()
        admin.dispose()
        drop_pg_database(name)


def test_job_longer_than_the_consumer_timeout_runs_once(tmp_path, amqp_uri):
    with broker_consumer_timeout(2000):
        job_longer_than_the_consumer_timeout_runs_once(tmp_path, amqp_uri)


def job_longer_than_the_consumer_timeout_runs_once(tmp_path, amqp_uri):
    mesh = Mesh(tmp_path, amqp_uri)
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True)
        c_id = steps_package(
            mesh, "long", '<ExeArgument id="s" type="exec" value="sleep 6" priority="1"/>'
        )
        (job_id,) = mesh.ok(
            "jobdispatch",
            "do",
            p_id=mesh.add_project("long", {"para.xml": sweep_para([1])}),
            c_id=c_id,
        )
        job = mesh.wait_state(job_id, FINAL, timeout=60)
        # Once the queue holds no message, acknowledged or not, none can come again.
        wait_for(lambda: deliveries_processed(mesh, 1), 30, what="the delivery acknowledged")
        assert job["state"] == "COMPLETED"
        assert len(step_starts(mesh, job_id, "s")) == 1
        assert [e["message"] for e in mesh.ok("job", "events", job_id=job_id)].count("claimed") == 1
    finally:
        mesh.close()


def test_a_job_with_no_machine_online_waits_and_is_placed_later(tmp_path, amqp_uri):
    mesh = Mesh(tmp_path, amqp_uri)
    try:
        mesh.start_core()
        c_id = steps_package(
            mesh, "later", '<ExeArgument id="s" type="exec" value="true" priority="1"/>'
        )
        (job_id,) = mesh.ok(
            "jobdispatch",
            "do",
            p_id=mesh.add_project("later", {"para.xml": sweep_para([1])}),
            c_id=c_id,
        )
        job = mesh.ok("job", "query", job_id=job_id)
        assert job["state"] == "QUEUED" and job["rid"] is None
        assert mesh.rpc("job", "getrid", job_id=job_id) == [
            -1,
            f"job {job_id} is waiting for a resource machine",
        ]
        mesh.start_agent(9, autorun=True)
        job = mesh.wait_state(job_id, "COMPLETED", timeout=30)
        assert job["rid"] == 9
    finally:
        mesh.close()


def test_a_silent_machine_shows_stalled_jobs_then_fails_them(tmp_path, amqp_uri):
    reconciler = {"on_machine_lost": "fail", "lost_after": 8, "stalled_intervals": 2}
    mesh = Mesh(tmp_path, amqp_uri, RECONCILER=reconciler)
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True)
        c_id = steps_package(
            mesh, "stall", '<ExeArgument id="s" type="exec" value="sleep 60" priority="1"/>'
        )
        p_id = mesh.add_project("stall", {"para.xml": sweep_para([1])})
        (job_id,) = mesh.ok("jobdispatch", "do", p_id=p_id, c_id=c_id)
        mesh.wait_state(job_id, "RUNNING")
        assert mesh.ok("machine", "ruok", rid=1)["stalled_jobs"] == []
        # A frozen agent neither beats nor monitors.
        mesh.procs["agent1"].send_signal(signal.SIGSTOP)
        ruok = wait_for(
            lambda: (r := mesh.ok("machine", "ruok", rid=1))["stalled_jobs"] and r,
            10,
            what="a stalled job",
        )
        assert ruok["stalled_jobs"] == [job_id] and ruok["ok"] is False
        job = mesh.wait_state(job_id, "FAILED", timeout=30)
        assert job["error"] == "resource machine 1 stopped sending heartbeats"
        # Woken up, the agent learns at its next monitoring pass and stops the step.
        mesh.procs["agent1"].send_signal(signal.SIGCONT)
        wait_for(
            lambda: not job_processes(job_id, under=mesh.tmp),
            20,
            what="the step of the failed job stopped",
        )
        assert mesh.ok("job", "query", job_id=job_id)["state"] == "FAILED"
    finally:
        if "agent1" in mesh.procs:
            mesh.procs["agent1"].send_signal(signal.SIGCONT)
        mesh.close()
