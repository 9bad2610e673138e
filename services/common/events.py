"""The event stream's vocabulary: the topic exchange, routing keys, event shapes and filters.

Central publishes each job transition (a ``job_events`` row) and each machine
change once on the topic exchange :data:`EVENTS_EXCHANGE`; the gateway and the
Python client consume it. Filters are the same everywhere: ``job``, ``sweep``,
``project``, ``machine`` and ``state``, each a value, a list or a comma list.
"""

from kombu import Exchange

from services.common.jobstates import STATES

EVENTS_EXCHANGE_NAME = "mirror.events"
# Durable: a consumer can bind before central first publishes.
EVENTS_EXCHANGE = Exchange(EVENTS_EXCHANGE_NAME, type="topic", durable=True)

JOB = "job"
MACHINE = "machine"
FILTER_KEYS = ("job", "sweep", "project", "machine", "state")
# Filters on what only job events carry: a machine event never matches them.
JOB_ONLY = ("job", "sweep", "project", "state")


class FilterError(ValueError):
    """A filter that names no key or holds a value of the wrong kind."""


def routing_key(event):
    """``job.<STATE>`` for a job event, ``machine.<rid>`` for a machine event."""
    if event["kind"] == JOB:
        return f"job.{event['state']}"
    return f"machine.{event['rid']}"


def job_event(row):
    """The published shape of one ``job_events`` row joined with its job.

    ``row`` has ``id``, ``job_id``, ``time`` (a datetime), ``state``, ``step``,
    ``message``, ``p_id``, ``rid``, ``owner`` and ``sweep`` (the job's sweep id).
    """
    return {
        "kind": JOB,
        "id": int(row["id"]),
        "job_id": int(row["job_id"]),
        "p_id": row["p_id"],
        "sweep": row["sweep"],
        "rid": row["rid"],
        "state": row["state"],
        "step": row["step"],
        "message": row["message"] or "",
        "time": row["time"].isoformat(),
        "owner": row["owner"],
    }


def machine_event(machine, stamp):
    """The published shape of one ``machine.list`` entry that changed at ``stamp`` (ISO text)."""
    return {
        "kind": MACHINE,
        "rid": machine["rid"],
        "name": machine.get("name"),
        "online": bool(machine.get("online")),
        "slots": machine.get("slots"),
        "used_cores": machine.get("used_cores"),
        "running": machine.get("running"),
        "queued": machine.get("queued"),
        "last_heartbeat": machine.get("last_heartbeat"),
        "time": stamp,
    }


def _values(value):
    if value is None or value == "":
        return []
    items = value if isinstance(value, list | tuple | set) else str(value).split(",")
    return [str(v).strip() for v in items if str(v).strip()]


def parse_filters(filters):
    """``{key: frozenset of texts}`` of the filters given; unknown keys and states refused."""
    out = {}
    for key, value in (filters or {}).items():
        if key not in FILTER_KEYS:
            raise FilterError(f"unknown event filter {key!r}; one of {', '.join(FILTER_KEYS)}")
        values = _values(value)
        if not values:
            continue
        if key == "state":
            values = [v.upper() for v in values]
            unknown = set(values) - set(STATES)
            if unknown:
                raise FilterError(
                    f"unknown job state {sorted(unknown)[0]!r}; one of {', '.join(STATES)}"
                )
        elif key in ("job", "sweep", "project"):
            for v in values:
                if not v.isdigit():
                    raise FilterError(f"event filter {key} must be ids, got {v!r}")
        out[key] = frozenset(values)
    return out


def matches(event, filters):
    """Whether ``event`` passes the parsed ``filters`` (every key given must match)."""
    job = event.get("kind") == JOB
    fields = {
        "job": event.get("job_id"),
        "sweep": event.get("sweep"),
        "project": event.get("p_id"),
        "state": event.get("state"),
    }
    for key, allowed in filters.items():
        if key == "machine":
            if str(event.get("rid")) not in allowed and str(event.get("name")) not in allowed:
                return False
        elif not job or str(fields[key]) not in allowed:
            return False
    return True


def visible_to(event, identity):
    """Whether ``identity`` may see ``event``: job events of its own jobs (an admin: all)."""
    if identity.admin or event.get("kind") != JOB:
        return True
    return event.get("owner") == identity.name
