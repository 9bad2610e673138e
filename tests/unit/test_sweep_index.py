"""The in-memory parameter index of a sweep selects exactly the jobs ``evaluate`` matches."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from services.central.storage.sweepindex import IndexCache, SweepIndex
from services.common.where import evaluate, parse

# Values that meet every rule of the evaluator: numbers and numeric text
# compared as numbers, NaN, infinities, big integers beyond a float's
# precision, text compared as text, booleans, null, lists.
VALUES = st.sampled_from(
    [
        0,
        2,
        -1,
        2.0,
        0.5,
        -1.5,
        1e-05,
        math.nan,
        math.inf,
        -math.inf,
        2**60,
        2**60 + 1,
        "2",
        "2.0",
        " 3 ",
        "-1.5",
        "nan",
        "inf",
        "roe",
        "b",
        "",
        "True",
        "None",
        "x y",
        True,
        False,
        None,
        [1, 2],
    ]
)
NAMES = ("a", "b", "c")
LITERALS = st.sampled_from(
    ["0", "2", "2.0", "-1.5", "1e-05", "1152921504606846976", "'2'", "'roe'", "'b'"]
    + ["''", "'nan'", "'inf'", "'True'", "'None'", "'x y'", "' 3 '", "'zz'"]
)
OPS = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
JOBS = st.lists(
    st.dictionaries(st.sampled_from(NAMES[:2]), VALUES, max_size=2), min_size=1, max_size=40
)


def leaves():
    name = st.sampled_from(NAMES)
    return st.one_of(
        st.builds(lambda n, o, v: f"{n} {o} {v}", name, OPS, LITERALS),
        st.builds(lambda v, o, n: f"{v} {o} {n}", LITERALS, OPS, name),
        st.builds(lambda n, o, m: f"{n} {o} {m}", name, OPS, name),
        st.builds(lambda v, o, w: f"{v} {o} {w}", LITERALS, OPS, LITERALS),
        st.builds(
            lambda n, neg, vs: f"{n} {'not in' if neg else 'in'} ({', '.join(vs)})",
            name,
            st.booleans(),
            st.lists(LITERALS, min_size=1, max_size=3),
        ),
    )


EXPRESSIONS = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=6,
)


@settings(max_examples=600, deadline=None)
@given(JOBS, EXPRESSIONS)
def test_the_index_selects_what_the_evaluator_matches(params, where):
    tree = parse(where)
    index = SweepIndex(list(range(10, 10 + len(params))), params)
    expected = {pos for pos, row in enumerate(params) if evaluate(tree, row)}
    assert index.select(tree) == expected


def test_a_big_sweep_answers_ranges_in_id_order_past_after():
    params = [{"x": i, "y": 1 + i % 10} for i in range(1, 20001)]
    index = SweepIndex(list(range(1001, 21001)), params)
    picked = index.select(parse("x > 19700 and y in (1, 2)"))
    ids = list(index.ids_after(picked, 0))
    assert ids == [1000 + i for i in range(19701, 20001) if i % 10 in (0, 1)]
    assert list(index.ids_after(picked, ids[9])) == ids[10:]
    # Dense selections are walked in order rather than sorted: same answer.
    dense = index.select(parse("not x == 5"))
    assert list(index.ids_after(dense, 1003))[:3] == [1004, 1006, 1007]


def test_columns_are_built_for_every_name_and_unknown_names_are_missing():
    index = SweepIndex([1, 2, 3], [{"a": 1}, {"b": "x"}, {}])
    assert index.select(parse("a == 1")) == {0}
    assert index.select(parse("b != 'x'")) == {0, 2}
    assert index.select(parse("nothing != 1")) == {0, 1, 2}
    assert index.select(parse("nothing < 1")) == set()


class FakeSession:
    """Stands for a session: ``load`` is replaced, so nothing is read through it."""


def test_the_cache_reads_each_sweep_once_and_drops_the_least_recently_used(monkeypatch):
    reads = []

    def load(session, sweep_id):
        reads.append(sweep_id)
        return SweepIndex(list(range(sweep_id)), [{} for _ in range(sweep_id)])

    monkeypatch.setattr("services.central.storage.sweepindex.load", load)
    cache = IndexCache(max_jobs=10)
    session = FakeSession()
    assert cache.get(session, 4).size == 4
    cache.get(session, 4)
    cache.get(session, 5)
    cache.get(session, 4)  # 4 is now the most recently used
    cache.get(session, 3)  # 4 + 5 + 3 > 10: 5 goes
    assert reads == [4, 5, 3]
    assert list(cache.entries) == [4, 3]
    cache.drop(4)
    cache.get(session, 4)
    assert reads == [4, 5, 3, 4]
    # One sweep bigger than the limit is still kept, alone.
    cache.get(session, 30)
    assert list(cache.entries) == [30]
