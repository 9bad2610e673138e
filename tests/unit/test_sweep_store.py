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


def states_of(params):
    return [SimpleNamespace(index=i, name=f"s{i}", params=p) for i, p in enumerate(params)]


@pytest.fixture(params=["dispatch", "submit"])
def stores(request, seeded_engine):
    """A sweep of the jobs of ``PARAMS``: a dispatch (indexed in memory) or a submission one."""
    Session = make_sessionmaker(seeded_engine)
    jobs, sweeps = JobStore(Session), SweepStore(Session)
    states = states_of(PARAMS)
    if request.param == "dispatch":
        ids = jobs.create(1, 1, "para.xml", states, ["a"], [7] * len(states), sweep={"p_id": 1})
    else:
        ids = jobs.create(1, 1, "", states[:1], ["a"], [7], sweep={"kind": "submit"})
        sweep_id = jobs.get(ids[0])["sweep_id"]
        for state in states[1:]:
            ids += jobs.create(1, 1, "", [state], ["a"], [7], sweep=sweep_id)
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


def test_targets_match_the_pure_evaluation(stores):
    sweeps, sweep_id, ids = stores
    where = "solver == 'roe' or x == '4'"
    keep = matcher(where)
    expected = [(j, "QUEUED") for j, p in zip(ids, PARAMS, strict=True) if keep(p)]
    assert sweeps.targets(sweep_id, states=["QUEUED"], where=where) == expected
    assert sweeps.targets(sweep_id, states=["FAILED"], where=where) == []


def test_pages_follow_after(stores):
    sweeps, sweep_id, ids = stores
    page = sweeps.jobs(sweep_id, where="solver == 'roe'", limit=2)
    assert [j["job_id"] for j in page] == [ids[0], ids[2]]
    rest = sweeps.jobs(sweep_id, where="solver == 'roe'", limit=2, after=page[-1]["job_id"])
    assert [j["job_id"] for j in rest] == [ids[4]]


@pytest.fixture
def big(seeded_engine):
    """A dispatch sweep of 3,000 jobs (``x`` 1..3000, ``y`` 1..10) with its stores."""
    Session = make_sessionmaker(seeded_engine)
    jobs, sweeps = JobStore(Session), SweepStore(Session)
    params = [{"x": i, "y": 1 + i % 10} for i in range(1, 3001)]
    ids = jobs.create(1, 1, "para.xml", states_of(params), ["a"], [7] * 3000, sweep={"p_id": 1})
    yield jobs, sweeps, jobs.get(ids[0])["sweep_id"], ids


def test_an_indexed_page_leaves_out_deleted_jobs_and_fills_itself(big):
    jobs, sweeps, sweep_id, ids = big
    where = "x > 2900 and y in (1, 2)"
    first = [j["job_id"] for j in sweeps.jobs(sweep_id, where=where, limit=5)]
    assert first == [ids[i - 1] for i in (2901, 2910, 2911, 2920, 2921)]
    assert sweeps.indexes.entries  # read once, kept
    jobs.remove(first[0])
    jobs.remove(first[2])
    again = [j["job_id"] for j in sweeps.jobs(sweep_id, where=where, limit=5)]
    assert again == [ids[i - 1] for i in (2910, 2920, 2921, 2930, 2931)]


def test_an_indexed_page_with_a_state_reads_rounds_until_it_is_full(big):
    jobs, sweeps, sweep_id, ids = big
    failed = ids[4::500]  # x = 5, 505, ..., 2505: y == 6
    for job_id in failed:
        jobs.report(job_id, 7, {"state": "FAILED", "error": "boom"})
    page = sweeps.jobs(sweep_id, state="FAILED", where="y == 6", limit=4)
    assert [j["job_id"] for j in page] == failed[:4]
    assert {j["state"] for j in page} == {"FAILED"}
    rest = sweeps.jobs(sweep_id, state="FAILED", where="y == 6", limit=4, after=failed[3])
    assert [j["job_id"] for j in rest] == failed[4:]
    assert sweeps.jobs(sweep_id, state="FAILED", where="y == 5", limit=4) == []
    assert sweeps.targets(sweep_id, states=["FAILED"], where="x < 1000") == [
        (failed[0], "FAILED"),
        (failed[1], "FAILED"),
    ]


def test_deleting_a_sweep_drops_its_index(big):
    _, sweeps, sweep_id, _ = big
    sweeps.jobs(sweep_id, where="x == 1", limit=1)
    assert sweep_id in sweeps.indexes.entries
    sweeps.delete(sweep_id)
    assert sweep_id not in sweeps.indexes.entries
