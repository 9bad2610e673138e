"""Jobs per parameter value, counted at dispatch for the failure summary of a sweep."""

from types import SimpleNamespace

from services.central.storage.sweeps import MAX_DISTINCT, value_counts, value_text


def states(*params):
    return [SimpleNamespace(params=p) for p in params]


def test_only_parameters_that_vary_are_counted():
    counted = value_counts(
        states(
            {"alpha": 2, "mach": 0.6, "solver": "roe", "NCPUS": 1},
            {"alpha": 8, "mach": 0.6, "solver": "roe", "NCPUS": 1},
            {"alpha": 8, "mach": 0.7, "solver": "hllc", "NCPUS": 1},
        )
    )
    assert counted == {
        "alpha": {"2": 1, "8": 2},
        "mach": {"0.6": 2, "0.7": 1},
        "solver": {"roe": 2, "hllc": 1},
    }


def test_values_read_as_the_database_reads_them_out_of_json():
    assert [value_text(v) for v in ("a b", 2, 2.0, 1e-05, True)] == [
        "a b",
        "2",
        "2.0",
        "1e-05",
        "true",
    ]


def test_a_parameter_with_too_many_values_is_left_out():
    many = states(*({"x": i, "y": i % 3} for i in range(MAX_DISTINCT + 1)))
    assert set(value_counts(many)) == {"y"}
