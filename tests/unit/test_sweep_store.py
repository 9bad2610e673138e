"""SweepStore on real databases: ``where`` pages match the pure evaluation exactly."""

from types import SimpleNamespace

import pytest

from db.session import make_sessionmaker
from services.central.storage.jobstore import JobStore
from services.central.storage.sweeps import SweepStore
from services.common.where import matcher

PARAMS = [
    {"x": 1, "mach": 0.5, "solver": "roe", "tag": "2"},
    {"x": 2, "mach": 0.6, "solver": "hllc", "tag": "b"},
    {"x": 3, "mach": 0.7, "solver": "roe", "tag": "2.0"},
    {"x": "4", "mach": "0.8", "solver": "ausm"},
    {"x": 5.5, "mach": 0.9, "solver": "roe", "tag": "x y"},
]


@pytest.fixture
def stores(seeded_engine):
    Session = make_sessionmaker(seeded_engine)
    jobs, sweeps = JobStore(Session), SweepStore(Session)
    states = [SimpleNamespace(index=i, name=f"s{i}", params=p) for i, p in enumerate(PARAMS)]
    ids = jobs.create(1, 1, "para.xml", states, ["a"], [7] * len(states), sweep={"p_id": 1})
    yield sweeps, jobs.get(ids[0])["sweep_id"], ids


@pytest.mark.parametrize(
    "where",
    [
        "x > 2",
        "x >= 2 and mach < 0.85",
        "x == 4",
        "x == '4'",
        "2 < x",
        "mach == 0.8 or solver == 'hllc'",
        "solver in ('roe', 'ausm') and x <= 3",
        "x in (1, 4, 5.5)",
        "tag == 2",
        "tag == 'b'",
        "tag != 'b'",
        "not x > 2",
        "missing > 1 or x == 1",
        "solver > 'b'",
    ],
)
def test_where_pages_match_the_pure_evaluation(stores, where):
    sweeps, sweep_id, ids = stores
    keep = matcher(where)
    expected = [job_id for job_id, params in zip(ids, PARAMS, strict=True) if keep(params)]
    assert [j["job_id"] for j in sweeps.jobs(sweep_id, where=where, limit=10)] == expected


def test_pages_follow_after(stores):
    sweeps, sweep_id, ids = stores
    page = sweeps.jobs(sweep_id, where="solver == 'roe'", limit=2)
    assert [j["job_id"] for j in page] == [ids[0], ids[2]]
    rest = sweeps.jobs(sweep_id, where="solver == 'roe'", limit=2, after=page[-1]["job_id"])
    assert [j["job_id"] for j in rest] == [ids[4]]
