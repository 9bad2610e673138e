"""The gateway's request helpers: query value coercion and ``service-method`` targets."""

import pytest

from gateway.proxy import coerce_value, parse_target


@pytest.mark.parametrize(
    "text, value",
    [
        ("5", 5),
        ("-3", -3),
        ("05", 5),
        ("-0", 0),
        ("x5", "x5"),
        ("", ""),
        ("-", "-"),
        ("1.5", "1.5"),
        (" 5", " 5"),
        ("５", "５"),
        ("1e3", "1e3"),
        ("9" * 5000, "9" * 5000),
    ],
)
def test_coerce_value(text, value):
    assert coerce_value(text) == value
    assert type(coerce_value(text)) is type(value)


def test_parse_target_splits_at_first_dash():
    assert parse_target("jobrun_5-do") == ("jobrun_5", "do")
    assert parse_target("job-getrid") == ("job", "getrid")
