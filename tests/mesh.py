"""A real mesh of ``mirror`` processes for integration tests, on private names and ports."""

import base64
import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import yaml
from nameko.standalone.rpc import ClusterRpcProxy

from tests.stepprocs import kill_steps_under

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def create_pg_database():
    """Create a private PostgreSQL database; return its name and URL."""
    import sqlalchemy as sa

    name = f"mirror_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(name):
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def script_mesh(tmp, amqp_uri, machine_name="alpha", slots=None):
    """Core services and one autorun agent (rid 1) that lets scripts use ``tmp/shared``."""
    shared = Path(tmp) / "shared"
    shared.mkdir()
    mesh = Mesh(tmp, amqp_uri, AGENT={"allowed_roots": [str(shared)], "name": machine_name})
    mesh.shared = shared
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, slots=slots)
        yield mesh
    finally:
        mesh.close()


class ProcessDied(Exception):
    """A mesh process exited while the test waited on it."""


def wait_for(predicate, timeout=30, interval=0.1, what="condition"):
    """Poll ``predicate`` until it returns a truthy value; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except ProcessDied:
            raise
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


def rabbitmqctl(*args):
    """Run ``rabbitmqctl -q ARGS``; return its standard output."""
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout


# Every worktree on this machine shares the broker: one test at a time changes a
# broker-wide setting, so the value a test reads first is never another test's.
BROKER_SETTINGS_LOCK = Path("/tmp/mirror-test-broker-settings.lock")


@contextlib.contextmanager
def broker_consumer_timeout(ms):
    """Set the broker-wide ``consumer_timeout`` to ``ms`` for the block, then restore it.

    The value found first comes back exactly, or stays unset when it was unset.
    """
    with open(BROKER_SETTINGS_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = rabbitmqctl("eval", "application:get_env(rabbit, consumer_timeout).").strip()
        term = re.fullmatch(r"\{ok,(.+)\}", found, re.S)
        if term is None and found != "undefined":
            raise AssertionError(f"unexpected consumer_timeout setting: {found!r}")
        rabbitmqctl("eval", f"application:set_env(rabbit, consumer_timeout, {int(ms)}).")
        try:
            yield
        finally:
            if term is None:
                rabbitmqctl("eval", "application:unset_env(rabbit, consumer_timeout).")
            else:
                restore = f"application:set_env(rabbit, consumer_timeout, {term.group(1)})."
                rabbitmqctl("eval", restore)


def new_vhost(amqp_uri):
    """A fresh vhost on the broker of ``amqp_uri``; returns its name and URI.

    nameko names RPC queues ``rpc-<service>`` whatever the exchange, so two
    meshes in one vhost would share queues: each mesh gets a vhost of its own.
    """
    parts = urllib.parse.urlsplit(amqp_uri)
    name = f"mirror-mesh-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, parts.username or "guest", ".*", ".*", ".*")
    return name, urllib.parse.urlunsplit(parts._replace(path="/" + name))


class Mesh:
    """Config, processes and clients of one test mesh, on a vhost of its own."""

    def __init__(self, tmp, amqp_uri, db_url=None, **overrides):
        self.tmp = Path(tmp)
        self.vhost, amqp_uri = new_vhost(amqp_uri)
        self.exchange = f"mirror_test_{uuid.uuid4().hex[:8]}"
        ftp_port = free_port()
        passive = free_port()
        self.config = {
            "AMQP_URI": amqp_uri,
            "rpc_exchange": self.exchange,
            "DATA_DIR": str(self.tmp / "data"),
            "DB_URL": db_url or "",
            "FTP": {"port": ftp_port, "passive_ports": [passive, passive]},
            "GATEWAY": {"address": f"127.0.0.1:{free_port()}", "timeout": 20},
            "AGENT": {"slots": 4, "kill_grace": 2, "heartbeat": 0.5, "offline_after": 4},
            "MONITOR": {"interval": 1},
            "RECONCILER": {"interval": 1, "lost_after": 5},
            "RPC": {"timeout": 20},
        }
        for key, value in overrides.items():
            if isinstance(value, dict):
                self.config.setdefault(key, {}).update(value)
            else:
                self.config[key] = value
        self.config_path = self.tmp / "mirror.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))
        self.procs = {}
        self.agent_options = {}
        self._proxy = None

    # -- processes ----------------------------------------------------------
    def command(self, *args):
        return [sys.executable, "-m", "services.cli", "--config", str(self.config_path), *args]

    def start(self, name, *args, env=None):
        log = open(self.tmp / f"{name}.log", "ab")
        proc = subprocess.Popen(
            self.command(*args),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def stop(self, name, sig=signal.SIGTERM, timeout=20):
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def log(self, name):
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_core(self):
        """File server, central services and gateway; wait until they answer."""
        self.start("ftp", "ftp")
        self.start("central", "central")
        self.start("gateway", "gateway")
        wait_for(
            lambda: self.check_alive() or self.rpc("machine", "list")[0] == 0,
            60,
            what="central services",
        )
        wait_for(self._gateway_up, 30, what="gateway")
        return self

    def start_agent(
        self,
        rid=1,
        autorun=False,
        slots=None,
        tags=None,
        env=None,
        amqp_uri=None,
        wait=True,
        agent=None,
    ):
        """Start the agent of machine ``rid``.

        ``amqp_uri`` gives it a broker of its own, ``agent`` AGENT settings of its own.
        """
        self.agent_options[rid] = {
            "autorun": autorun,
            "slots": slots,
            "tags": tags,
            "env": env,
            "amqp_uri": amqp_uri,
            "agent": agent,
        }
        args = ["agent", "--rid", str(rid)] + (["--autorun"] if autorun else [])
        if slots:
            args += ["--slots", str(slots)]
        if tags is not None:
            args += ["--tags", ",".join(tags)]
        config_path = self.config_path
        if amqp_uri or agent:
            config = {**self.config, "AGENT": {**self.config["AGENT"], **(agent or {})}}
            config["AMQP_URI"] = amqp_uri or config["AMQP_URI"]
            config_path = self.tmp / f"agent{rid}.yaml"
            config_path.write_text(yaml.safe_dump(config))
        name = f"agent{rid}"
        log = open(self.tmp / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "--config", str(config_path), *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        if wait:
            self.wait_online(rid)

    def start_agent_again(self, rid):
        """Start the agent of machine ``rid`` as it was last started; wait until it is online."""
        self.start_agent(rid, **self.agent_options[rid])

    def wait_online(self, rid, timeout=60):
        wait_for(
            lambda: self.check_alive() or (self.machine(rid) or {}).get("online"),
            timeout,
            what=f"agent {rid} online",
        )

    def check_alive(self):
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ProcessDied(
                    f"{name} exited with {proc.returncode}:\n{self.log(name)[-3000:]}"
                )

    def machine(self, rid):
        code, machines = self.rpc("machine", "list")
        return next((m for m in machines if m["rid"] == rid), None)

    def close(self):
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        # Agents first: they would otherwise retry reports against a stopped central.
        for name in sorted(self.procs, key=lambda n: not n.startswith("agent")):
            self.stop(name)
        # Steps outlive their agent by design; a test's must not outlive its mesh,
        # or a later mesh's job of the same id would seem to have them.
        kill_steps_under(self.tmp)
        if self.vhost:
            rabbitmqctl("delete_vhost", self.vhost)
            self.vhost = None

    def queue(self, name):
        """``(messages, consumers)`` of queue ``name``; messages count unacknowledged ones too."""
        out = rabbitmqctl(
            "list_queues", "-p", self.vhost, "name", "messages", "consumers", "--no-table-headers"
        )
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == name:
                return int(parts[1]), int(parts[2])
        raise AssertionError(f"no queue {name} in vhost {self.vhost}")

    # -- clients --------------------------------------------------------------
    @property
    def rpc_config(self):
        return {"AMQP_URI": self.config["AMQP_URI"], "rpc_exchange": self.exchange}

    def rpc(self, service, method, **kwargs):
        if self._proxy is None:
            self._proxy = ClusterRpcProxy(self.rpc_config, timeout=30)
            self._cluster = self._proxy.start()
        return getattr(getattr(self._cluster, service), method)(**kwargs)

    def ok(self, service, method, **kwargs):
        """Call and assert success; return the value."""
        code, value = self.rpc(service, method, **kwargs)
        assert code == 0, f"{service}.{method}({kwargs}) answered {value!r}"
        return value

    @property
    def base_url(self):
        return f"http://{self.config['GATEWAY']['address']}"

    def http(self, path, params=None, data=None, headers=None):
        """``(status, parsed JSON body)`` of a gateway request."""
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body, headers=headers or {})
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def _gateway_up(self):
        host, port = self.config["GATEWAY"]["address"].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=1):
            return True

    # -- helpers ------------------------------------------------------------------
    def add_project(self, name, files):
        p_id = self.ok("project", "new", name=name)
        for fname, data in files.items():
            self.ok(
                "project", "upload", p_id=p_id, name=fname, content=base64.b64encode(data).decode()
            )
        return p_id

    def add_package(self, name, data):
        return self.ok("calcpackage", "new", name=name, content=base64.b64encode(data).decode())

    def wait_state(self, job_id, states, timeout=60):
        states = (states,) if isinstance(states, str) else tuple(states)
        return wait_for(
            lambda: (job := self.ok("job", "query", job_id=job_id))["state"] in states and job,
            timeout,
            what=f"job {job_id} in {states}",
        )
