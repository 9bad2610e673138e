"""Where a seed-001 job goes and what it runs with: clusters, CPU checks, environments.

A cluster is a Mirror machine. ``choose`` ranks the configured clusters for one
job (the preferred one when it has room; else tag overlap, ``prefer``, then
``weight`` times free cores) and answers the machine name that Mirror's
``submit(preferred=...)`` is given: central still falls back to any machine
with room when that one has none. Each machine record carries ``mesh``, the
key of the mesh it belongs to (None for the main one), so that clusters on
other meshes compete by the same rules.
"""

import logging
import math
import re
import warnings

from services.client.clusters import Cluster

log = logging.getLogger("services.client")

# $NAME or ${NAME}: the references the machine's shell expands; any other `$` is literal.
_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def requested_cpus(resource_requirements):
    """The cores a job takes (``CPU`` rounded up, 1 by default); warn about other resources."""
    if not resource_requirements:
        return 1
    ignored = sorted(k for k, v in resource_requirements.items() if k != "CPU" and v)
    if ignored:
        warnings.warn(
            f"resource requirements {', '.join(ignored)} are not scheduled by Mirror "
            "(only CPU is) and are ignored",
            stacklevel=4,
        )
    cpus = resource_requirements.get("CPU", 1)
    try:
        cpus = float(cpus)
    except (TypeError, ValueError):
        raise ValueError(f"resource_requirements CPU must be a number, got {cpus!r}") from None
    if cpus <= 0:
        raise ValueError(f"resource_requirements CPU must be positive, got {cpus!r}")
    return max(1, math.ceil(cpus))


def check_cpus(ncpus, machines):
    """Refuse (``RuntimeError``) a job that needs more cores than any machine has."""
    if not machines:
        return
    largest = max(machines, key=lambda m: m.get("slots") or 0)
    if ncpus > (largest.get("slots") or 0):
        raise RuntimeError(
            f"not enough resources: the job asks for {ncpus} CPU but the largest machine "
            f"({largest.get('name')}, rid {largest.get('rid')}) has {largest.get('slots')} "
            "cores; ask for fewer"
        )


def _room(machine, ncpus):
    if not machine or not machine.get("online"):
        return False
    return (machine.get("slots") or 0) - (machine.get("used_cores") or 0) >= ncpus


def choose(clusters, machines, ncpus, preferred=None, tags=None):
    """The cluster (a ``Cluster``) for one job, or None to let central choose.

    An unknown ``preferred`` name is warned about, naming it, and the other
    rules apply.
    """
    by_name = {(m.get("mesh"), m.get("name")): m for m in machines}

    def machine_of(cluster):
        return by_name.get((cluster.mesh, cluster.machine))

    if preferred is not None:
        cluster = clusters.get(preferred)
        if cluster is None and (None, preferred) in by_name:
            # A main-mesh machine's own name works as a cluster name too.
            cluster = Cluster(name=preferred, machine=preferred)
        if cluster is None:
            known = sorted(set(clusters) | {n for mesh, n in by_name if n and mesh is None})
            message = (
                f"preferred_cluster {preferred!r} is not a configured cluster or machine "
                f"(known: {', '.join(known) or 'none'}); placing the job elsewhere"
            )
            warnings.warn(message, stacklevel=4)
            log.warning(message)
        elif _room(machine_of(cluster), ncpus):
            return cluster
        else:
            log.info("preferred cluster %s has no room now; placing the job elsewhere", preferred)
    wanted = set(tags or ())
    ranked = []
    for cluster in clusters.values():
        machine = machine_of(cluster)
        if not _room(machine, ncpus):
            continue
        free = (machine.get("slots") or 0) - (machine.get("used_cores") or 0)
        ranked.append(
            (len(wanted & set(cluster.tags)), cluster.prefer, cluster.weight * free, cluster)
        )
    if not ranked:
        return None
    return max(ranked, key=lambda r: r[:3])[3]


def _shell_word(value):
    """``value`` as one shell word: literal text quoted, ``$NAME``/``${NAME}`` left to expand."""
    parts, last = [], 0
    for match in _REFERENCE.finditer(value):
        if match.start() > last:
            parts.append("'" + value[last : match.start()].replace("'", "'\\''") + "'")
        parts.append('"${%s}"' % (match.group(1) or match.group(2)))
        last = match.end()
    if last < len(value) or not parts:
        parts.append("'" + value[last:].replace("'", "'\\''") + "'")
    return "".join(parts)


def split_environment(env_vars):
    """``(literal, exports)``: values passed as they are, and shell lines for the others.

    A value that refers to ``$NAME`` or ``${NAME}`` must expand against the
    job's environment on its machine (``PATH``, ``HOME``, ``PYTHONPATH``...),
    which only the job's shell sees: it becomes an ``export`` line run before
    the entrypoint. Nothing else in the value is expanded (no ``$(...)``, no
    backquotes).
    """
    literal, exports = {}, []
    for name, value in env_vars.items():
        if not _NAME.match(name):
            raise ValueError(f"env_vars name {name!r} is not a valid variable name")
        if _REFERENCE.search(value):
            exports.append(f"export {name}={_shell_word(value)}")
        else:
            literal[name] = value
    return literal, exports
