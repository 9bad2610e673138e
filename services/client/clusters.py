"""The seed-001 cluster file (``clusters.yaml``) read as Mirror machines and defaults.

Each entry of ``clusters`` names one resource machine of the mesh (``machine``,
or the cluster's own name) and says how to use it::

    mirror:                       # the mesh: a Mirror config file, or AMQP_URI/rpc_exchange
      config: mirror.yaml         #   (relative to this file); else $MIRROR_CONFIG or
                                  #   config/mirror.yaml in the working directory
    clusters:
      cpu_cluster:
        machine: alpha            # the Mirror machine's name (default: cpu_cluster)
        head_address: "..."      # Ray's address: ignored, unless an amqp:// URI (below)
        runtime_env:
          env_vars: ["PYTHONPATH=/opt/code"]   # or a mapping
        prefer: true
        weight: 1.0
        tags: ["cpu", "stable"]
      far_cluster:
        head_address: "amqp://user:secret@far.example.org"   # another Mirror mesh
        rpc_exchange: mirror_com  # that mesh's exchange (the default)
        machine: beta             # a machine of that mesh

A cluster whose ``head_address`` is an AMQP URI lives on a separate mesh: the
client talks to that mesh's broker for the jobs it places there, and places
across meshes by the same rules as across machines.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from services.config import DEFAULT_PATH, masked

#: Where ``initialize_scheduler_environment()`` looks without a path.
CLUSTERS_ENV = "MIRROR_CLUSTERS"
DEFAULT_CLUSTERS = "clusters.yaml"
_AMQP_SCHEMES = ("amqp://", "amqps://")
DEFAULT_EXCHANGE = "mirror_com"


@dataclass
class Cluster:
    """One entry of ``clusters``: a Mirror machine and how to use it."""

    name: str
    machine: str
    prefer: bool = False
    weight: float = 1.0
    tags: list = field(default_factory=list)
    runtime_env: dict = field(default_factory=dict)
    head_address: str | None = None
    rpc_exchange: str | None = None

    @property
    def mesh(self):
        """``(amqp_uri, exchange)`` of the cluster's own mesh, or None for the main mesh."""
        if isinstance(self.head_address, str) and self.head_address.startswith(_AMQP_SCHEMES):
            return self.head_address, self.rpc_exchange or DEFAULT_EXCHANGE
        return None

    def describe(self):
        """The entry as a plain dict (``list_clusters``)."""
        return {
            "name": self.name,
            "machine": self.machine,
            "prefer": self.prefer,
            "weight": self.weight,
            "tags": list(self.tags),
            "runtime_env": dict(self.runtime_env),
            "head_address": masked(self.head_address) if self.mesh else self.head_address,
            "mesh": "main" if self.mesh is None else f"{masked(self.mesh[0])} {self.mesh[1]}",
        }


@dataclass
class Settings:
    """What a cluster file (or its absence) says: the mesh and the clusters."""

    source: str
    clusters: dict
    mirror_config: str | None = None
    amqp_uri: str | None = None
    exchange: str | None = None
    timeout: float | None = None


def env_pairs(env_vars, where):
    """``env_vars`` as a dict: a mapping, or a list of ``NAME=value`` texts."""
    if not env_vars:
        return {}
    if isinstance(env_vars, dict):
        return {str(k): str(v) for k, v in env_vars.items()}
    if isinstance(env_vars, list | tuple):
        pairs = {}
        for item in env_vars:
            name, sep, value = str(item).partition("=")
            if not sep or not name:
                raise ValueError(f"{where}: env_vars entry {item!r} is not NAME=value")
            pairs[name] = value
        return pairs
    raise ValueError(f"{where}: env_vars must be a mapping or a list of NAME=value")


def _cluster(name, entry, where):
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: cluster {name!r} must be a mapping")
    runtime_env = entry.get("runtime_env") or {}
    if not isinstance(runtime_env, dict):
        raise ValueError(f"{where}: cluster {name!r}: runtime_env must be a mapping")
    runtime_env = dict(runtime_env)
    runtime_env["env_vars"] = env_pairs(runtime_env.get("env_vars"), f"{where}: cluster {name!r}")
    tags = entry.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    try:
        weight = float(entry.get("weight", 1.0))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: cluster {name!r}: weight must be a number") from None
    return Cluster(
        name=str(name),
        machine=str(entry.get("machine") or name),
        prefer=bool(entry.get("prefer", False)),
        weight=weight,
        tags=[str(t) for t in tags],
        runtime_env=runtime_env,
        head_address=entry.get("head_address"),
        rpc_exchange=entry.get("rpc_exchange"),
    )


def read_clusters(path):
    """The ``Settings`` of cluster file ``path`` (``ValueError`` when malformed)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise RuntimeError(f"cannot read cluster file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"cluster file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"cluster file {path} must hold a mapping at the top")
    entries = data.get("clusters") or {}
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: clusters must be a mapping of cluster name to settings")
    clusters = {str(n): _cluster(n, e, str(path)) for n, e in entries.items()}
    mesh = data.get("mirror") or {}
    if not isinstance(mesh, dict):
        raise ValueError(f"{path}: mirror must be a mapping (config, AMQP_URI, rpc_exchange)")
    config = mesh.get("config")
    if config and not os.path.isabs(config):
        config = str(path.parent / config)
    return Settings(
        source=str(path),
        clusters=clusters,
        mirror_config=config,
        amqp_uri=mesh.get("AMQP_URI"),
        exchange=mesh.get("rpc_exchange"),
        timeout=mesh.get("timeout"),
    )


def default_settings(environ=None):
    """The settings found without a path, or None when there is no configuration anywhere.

    ``$MIRROR_CLUSTERS``, then ``clusters.yaml`` in the working directory; else a
    Mirror config file alone (``$MIRROR_CONFIG`` or ``config/mirror.yaml``),
    with no clusters.
    """
    environ = os.environ if environ is None else environ
    named = environ.get(CLUSTERS_ENV)
    if named:
        return read_clusters(named)
    if Path(DEFAULT_CLUSTERS).is_file():
        return read_clusters(DEFAULT_CLUSTERS)
    config = environ.get("MIRROR_CONFIG") or (
        DEFAULT_PATH if Path(DEFAULT_PATH).is_file() else None
    )
    if config:
        return Settings(source=str(config), clusters={}, mirror_config=str(config))
    return None


def has_mesh(settings, environ=None):
    """Whether ``settings`` (or the environment) say which main mesh to use."""
    environ = os.environ if environ is None else environ
    return bool(
        settings.amqp_uri
        or settings.mirror_config
        or environ.get("MIRROR_CONFIG")
        or Path(DEFAULT_PATH).is_file()
    )
