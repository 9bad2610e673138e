"""``Registry.heartbeat``: what a beat records and answers, on SQLite and PostgreSQL."""

import pytest

from db.models import Cleanup, Machine
from db.session import make_sessionmaker
from services.central.storage.records import now
from services.central.storage.registry import Registry


@pytest.fixture
def registry(seeded_engine):
    return Registry(make_sessionmaker(seeded_engine), None, {"heartbeat": 2, "offline_after": 3})


def machine(registry, rid):
    with registry.Session() as session:
        return session.get(Machine, rid)


def beat(registry, rid=1, started=False, **changes):
    offer = {"name": "alpha", "slots": 2, "tags": ["gpu"], "autorun": True}
    offer.update(changes)
    return registry.heartbeat(
        rid,
        offer["name"],
        offer["slots"],
        offer["tags"],
        offer["autorun"],
        started,
        offer.get("roots", ["/work"]),
        offer.get("slurm"),
    )


def test_a_first_beat_registers_the_machine_with_what_it_offers(registry):
    assert beat(registry, rid=3, started=True) == []
    m = machine(registry, 3)
    assert (m.name, m.slots, m.tags, m.autorun, m.roots, m.slurm) == (
        "alpha",
        2,
        ["gpu"],
        True,
        ["/work"],
        None,
    )
    assert m.started_at == m.last_heartbeat
    assert registry.is_online(3)


def test_a_later_beat_refreshes_every_field_and_keeps_the_start(registry):
    beat(registry, started=True)
    first = machine(registry, 1)
    beat(registry, name="beta", slots=8, tags=[], autorun=False, roots=["/x"], slurm={"idle": 4})
    m = machine(registry, 1)
    assert (m.name, m.slots, m.tags, m.autorun, m.roots, m.slurm) == (
        "beta",
        8,
        [],
        False,
        ["/x"],
        {"idle": 4},
    )
    assert m.started_at == first.started_at
    assert m.last_heartbeat > first.last_heartbeat


def test_a_started_beat_records_a_new_start(registry):
    beat(registry, started=True)
    first = machine(registry, 1)
    beat(registry, started=True)
    assert machine(registry, 1).started_at > first.started_at


def test_a_machine_never_started_gets_its_start_from_a_beat(registry):
    with registry.Session.begin() as session:
        session.add(Machine(rid=5, name="old"))
    before = now()
    beat(registry, rid=5)
    m = machine(registry, 5)
    assert m.started_at == m.last_heartbeat
    assert m.started_at >= before


def test_a_beat_answers_the_machine_s_pending_cleanups_in_order(registry):
    beat(registry, rid=1)
    beat(registry, rid=2)
    with registry.Session.begin() as session:
        for job_id, rid in ((12, 1), (10, 1), (11, 2)):
            session.add(Cleanup(job_id=job_id, rid=rid))
    assert beat(registry, rid=1) == [10, 12]
    registry.cleaned(1, [10])
    assert beat(registry, rid=1) == [12]
    assert beat(registry, rid=2) == [11]
