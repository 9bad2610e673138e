"""Load Mirror's YAML configuration with ``${VAR:default}`` substitution.

Embedded defaults make every command work with nothing set: a local broker,
the ``mirror_com`` exchange and an SQLite file in the data directory.
"""

import copy
import os
import re
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

from services.common.exposure import is_loopback_host

DEFAULT_PATH = "config/mirror.yaml"

DEFAULTS = {
    "AMQP_URI": "amqp://guest:guest@localhost",
    "rpc_exchange": "mirror_com",
    "DATA_DIR": "./mirror-data",
    # Empty means the embedded SQLite file DATA_DIR/mirror.db.
    "DB_URL": "",
    "FTP": {
        "host": "127.0.0.1",
        "port": 2121,
        # Address to listen on (empty: ``host``); 0.0.0.0 in a container.
        "bind": "",
        # Address announced for passive transfers behind NAT (empty: the socket's own).
        "masquerade_address": "",
        # Empty means DATA_DIR/ftp.
        "root": "",
        "writer": {"user": "mirror-agent", "password": "mirror-agent"},
        # For admins; its credentials never go into a URL.
        "reader": {"user": "mirror", "password": "mirror"},
        # Scheme, host and port of handed-out URLs; empty means ftp://<host>:<port>.
        # Each URL names its job's own read-only account, whatever account is here.
        "public_url": "",
        # HMAC key of the per-job accounts; empty means derived from the writer password.
        "url_secret": "",
        "passive_ports": [30000, 30099],
        "max_upload": 2 * 1024**3,
    },
    "GATEWAY": {
        "address": "127.0.0.1:8000",
        "tokens": [],
        # None: the user services (services.common.surface.USER_SERVICES).
        "expose": None,
        # Callers authenticate as users (``mirror user add``); see gateway/auth.py.
        "users": False,
        "auth_cache": 10,
        "max_body": 16 * 1024**2,
        "timeout": 30,
    },
    "AGENT": {
        "rid": 1,
        "name": "",
        # Empty means DATA_DIR/work/rid<N>.
        "work_root": "",
        "slots": 0,
        "tags": [],
        # Directories where submitted scripts may run and write their output
        # (besides the work root), e.g. ["/home", "/data"]. None: on a mesh
        # bound to loopback alone, the home and temporary directories of the
        # user running the agent; elsewhere none (default_roots).
        "allowed_roots": None,
        "kill_grace": 5,
        # Seconds a package's pre or post hook may run (in a process of its own).
        "hook_timeout": 60,
        # A user name: when the agent runs as root, steps and hooks run as this
        # user and job directories belong to it. Empty: as the agent itself.
        "run_as": "",
        # A job directory is not built while the work root has less free space
        # (bytes, or a size such as 1GiB).
        "min_free": "1GiB",
        # The largest job directory (bytes, or a size such as 100MiB) a user may
        # fetch whole (``mirror get ID --all``, ``Mirror.get``).
        "directory_cap": "100MiB",
        # Autorun records a step RUNNING once it has run this many seconds; a
        # shorter step is recorded once, when it ends (its journal covers a crash).
        "report_delay": 0.5,
        # Autorun claims and prepares up to this many jobs ahead of free cores
        # while the machine's jobs are short (services/agent/scheduler.py).
        # None: as many as the slots; 0: never.
        "claim_ahead": None,
        # Seconds between heartbeats; a machine missing ``offline_after`` beats is offline.
        "heartbeat": 2,
        "offline_after": 3,
        # How steps run: ``local`` processes, or ``slurm`` batch jobs (one per
        # step, submitted with sbatch from this login node; docs/slurm.md).
        "executor": "local",
        "slurm": {
            # Empty: the cluster's default partition, the user's default account.
            "partition": "",
            "account": "",
            # More sbatch options, each one word, e.g. ["--qos=short"].
            "sbatch_options": [],
            # Seconds between two looks at a step's Slurm job.
            "poll_interval": 1.0,
        },
    },
    # ``publish_delay``: seconds between committing placed jobs and publishing
    # them, a window tests use to stop central inside it (0 in production).
    "DEBUG": {"autorun_job": False, "publish_delay": 0},
    # Running steps' Progress and Process files are stat'ed every ``poll`` seconds
    # and read when they change; every ``interval`` seconds a running job is
    # reported even if nothing changed. A Progress file missing after a step ran
    # ``progress_missing_after`` seconds (or at the last step's end) is warned of.
    "MONITOR": {"interval": 5, "poll": 0.5, "progress_missing_after": 30},
    # A machine silent for ``lost_after`` seconds has its claimed jobs queued
    # again or failed (``on_machine_lost``); a running job with no progress
    # report for ``stalled_intervals`` monitor intervals is flagged in ruok.
    "RECONCILER": {
        "interval": 10,
        "lost_after": 60,
        "on_machine_lost": "requeue",
        "stalled_intervals": 6,
        "republish_after": 60,
        "outbox_after": 10,
    },
    "RPC": {"timeout": 30, "retries": 5},
    "DISPATCH": {"max_param_bytes": 64 * 1024 * 1024},
}

# nameko reads HEARTBEAT, PREFETCH_COUNT, SERIALIZER... itself: Mirror's own
# settings stay out of those names.
# Leading zeros stay text: YAML 1.1 would read "0123" as an octal 83.
_SCALAR = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?|true|false|True|False|null|~")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


class ConfigError(Exception):
    """A configuration file that cannot be read or holds a bad value."""


def _substitute(value, environ):
    """Replace ``${VAR:default}`` in every string of a loaded YAML tree."""
    if isinstance(value, dict):
        return {k: _substitute(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, environ) for v in value]
    if not isinstance(value, str):
        return value
    whole = _VAR.fullmatch(value)

    def lookup(match):
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is None:
            raise ConfigError(f"environment variable {name} is not set and has no default")
        return default

    text = _VAR.sub(lookup, value)
    if whole and _SCALAR.fullmatch(text.strip()):
        # A value that is one variable and reads as a number or a boolean takes
        # that type; anything else (a password, a token) stays text.
        return yaml.safe_load(text)
    return text


def _merge(base, override):
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path=None, environ=None, overrides=None):
    """Return the effective configuration dict.

    ``path`` wins, then ``MIRROR_CONFIG``, then ``config/mirror.yaml`` if it
    exists in the working directory; the embedded defaults fill every gap.
    """
    environ = os.environ if environ is None else environ
    path = path or environ.get("MIRROR_CONFIG")
    loaded = {}
    if path or Path(DEFAULT_PATH).is_file():
        path = Path(path or DEFAULT_PATH)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top")
    config = _merge(DEFAULTS, _substitute(loaded, environ))
    config = _merge(config, overrides)
    return resolve(config)


def resolve(config):
    """Fill the derived defaults (paths under DATA_DIR, URLs) in place and return it."""
    data = Path(config["DATA_DIR"]).expanduser().resolve()
    config["DATA_DIR"] = str(data)
    if not config.get("DB_URL"):
        config["DB_URL"] = f"sqlite:///{data / 'mirror.db'}"
    ftp = config["FTP"]
    ftp["root"] = str(Path(ftp.get("root") or data / "ftp").expanduser().resolve())
    if not ftp.get("public_url"):
        host = str(ftp["host"])
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        ftp["public_url"] = f"ftp://{host}:{ftp['port']}"
    agent = config["AGENT"]
    agent["rid"] = int(agent["rid"])
    if agent.get("allowed_roots") is None:
        agent["allowed_roots"] = default_roots(config)
    if not agent.get("name"):
        agent["name"] = f"{socket.gethostname()}-{agent['rid']}"
    if not agent.get("work_root"):
        agent["work_root"] = str(data / "work" / f"rid{agent['rid']}")
    if not agent.get("slots"):
        agent["slots"] = os.cpu_count() or 1
    check_executor(agent)
    check_claim_ahead(agent)
    return config


def check_claim_ahead(agent):
    """Refuse an ``AGENT.claim_ahead`` that is not empty or a whole number, 0 or more."""
    ahead = agent.get("claim_ahead")
    if ahead is None:
        return
    if isinstance(ahead, bool) or not isinstance(ahead, int) or ahead < 0:
        raise ConfigError(
            f"AGENT.claim_ahead is {ahead!r}; it must be a whole number of jobs, 0 or more "
            "(empty: as many as the slots)"
        )


EXECUTORS = ("local", "slurm")


def check_executor(agent):
    """Refuse an unknown ``AGENT.executor`` or a malformed ``AGENT.slurm``."""
    executor = str(agent.get("executor") or "local")
    if executor not in EXECUTORS:
        raise ConfigError(
            f"AGENT.executor is {executor!r}; it must be one of {', '.join(EXECUTORS)}"
        )
    agent["executor"] = executor
    slurm = agent.setdefault("slurm", {})
    options = slurm.get("sbatch_options") or []
    if isinstance(options, str) or not all(isinstance(o, str) for o in options):
        raise ConfigError("AGENT.slurm.sbatch_options must be a list of strings (one word each)")
    slurm["sbatch_options"] = list(options)
    try:
        slurm["poll_interval"] = float(slurm.get("poll_interval", 1.0))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"AGENT.slurm.poll_interval must be a number of seconds, "
            f"not {slurm.get('poll_interval')!r}"
        ) from exc
    if slurm["poll_interval"] <= 0:
        raise ConfigError("AGENT.slurm.poll_interval must be more than 0 seconds")


def masked(uri):
    """A URI (broker, database) with its password hidden, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def loopback_only(config):
    """Whether the broker, the gateway and the file server are all on loopback addresses."""
    broker = urlsplit(str(config["AMQP_URI"])).hostname
    gateway = str(config["GATEWAY"]["address"]).rpartition(":")[0]
    ftp = config["FTP"].get("bind") or config["FTP"]["host"]
    return all(is_loopback_host(host) for host in (broker, gateway, ftp))


def default_roots(config):
    """The allowed roots of an agent that sets none.

    A mesh on loopback alone is one person's: their home and the system's
    temporary directory. A mesh reachable from elsewhere allows none but the
    work root until ``AGENT.allowed_roots`` names some.
    """
    if not loopback_only(config):
        return []
    return [str(Path.home()), tempfile.gettempdir()]


def for_agent(config, rid):
    """A copy of ``config`` for the agent of resource machine ``rid``."""
    config = copy.deepcopy(config)
    if int(rid) != int(config["AGENT"]["rid"]):
        config["AGENT"].update(rid=int(rid), name="", work_root="")
    return resolve(config)
