"""The ``where`` language of sweeps: what it reads, what it matches, what it refuses."""

import pytest

from services.common.where import WhereError, matcher, names, parse

JOB = {"mach": "0.6", "alpha": 2, "solver": "roe", "NCPUS": "1", "tag": "wing a"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mach>=0.6 and alpha==2", True),
        ("mach > 0.6", False),
        ("mach<0.7", True),
        ("mach <= 0.59", False),
        ("alpha != 2", False),
        ("alpha == '2'", True),
        ("solver == 'roe'", True),
        ('solver == "hllc"', False),
        ("solver in ('hllc', 'roe')", True),
        ("alpha in (1, 3)", False),
        ("alpha not in (1, 3)", True),
        ("not alpha == 2", False),
        ("not (alpha == 2 or mach > 1)", False),
        ("alpha == 1 or alpha == 2 and solver == 'roe'", True),
        ("(alpha == 1 or alpha == 2) and solver == 'x'", False),
        ("tag == 'wing a'", True),
        ("solver < 'z'", True),
        ("solver > 1", False),
        ("missing == 1", False),
        ("missing != 1", True),
        ("ALPHA == 2", False),
        ("alpha == 2.0", True),
        ("mach == 6e-1", True),
        ("alpha >= -1 AND mach < 1", True),
    ],
)
def test_matches(text, expected):
    assert matcher(text)(JOB) is expected


def test_none_matches_every_job():
    assert matcher(None)({}) is True


def test_names_read():
    assert names(parse("a == 1 and (b in (1, 2) or not c < d)")) == {"a", "b", "c", "d"}


@pytest.mark.parametrize(
    ("text", "position", "problem"),
    [
        ("alpha", 6, "expected a comparison"),
        ("alpha = 2", 7, "unexpected character '='"),
        ("alpha == 2 and", 15, "found the end"),
        ("alpha == 2 xor mach > 1", 12, "expected 'and', 'or' or the end"),
        ("(alpha == 2", 12, "expected ')'"),
        ("alpha in 1, 2", 10, "expected '(' after 'in'"),
        ("alpha in (1, beta)", 14, "expected a number or a string"),
        ("alpha in ()", 11, "expected a number or a string"),
        ("alpha not 2", 11, "expected 'in' after 'not'"),
        ("__import__('os').system('x')", 17, "unexpected character '.'"),
        ("__import__('os')", 11, "expected a comparison"),
        ("alpha == 'open", 10, "unexpected character"),
        ("a == 1; b == 2", 7, "unexpected character ';'"),
        ("== 2", 1, "expected a parameter name"),
    ],
)
def test_bad_expressions_name_the_position(text, position, problem):
    with pytest.raises(WhereError) as caught:
        parse(text)
    message = str(caught.value)
    assert f"at position {position} " in message
    assert problem in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "where is empty"), ("  ", "where is empty"), (3, "where must be a string")],
)
def test_empty_or_not_text(text, problem):
    with pytest.raises(WhereError, match=problem):
        parse(text)


def test_too_long():
    with pytest.raises(WhereError, match="longer than"):
        parse("a == 1 or " * 300 + "a == 2")
