"""The ``[code, value]`` envelope and argument coercion."""

import sys

import pytest

from adapters.errors import AdapterError
from services.common.errors import MirrorError
from services.common.names import service_name
from services.common.rpc import envelope, to_int


def exc_info(exc):
    try:
        raise exc
    except Exception:
        return sys.exc_info()


def test_success_is_wrapped():
    assert envelope({"a": 1}, None) == ([0, {"a": 1}], None)


def test_expected_errors_become_messages():
    assert envelope(None, exc_info(MirrorError("job is not existed , job : 3"))) == (
        [-1, "job is not existed , job : 3"],
        None,
    )
    assert envelope(None, exc_info(AdapterError("para.xml", 7, "bad")))[0] == [
        -1,
        "para.xml:7: bad",
    ]


def test_unexpected_errors_are_one_line_not_a_traceback():
    result, exc = envelope(None, exc_info(KeyError("x")))
    assert exc is None and result[0] == -1 and result[1] == "internal error: KeyError: 'x'"


@pytest.mark.parametrize(("value", "expected"), [(2, 2), ("2", 2), (" -7 ", -7), ("0", 0)])
def test_to_int_accepts_ints_and_their_decimal_strings(value, expected):
    assert to_int(value, "job_id") == expected


@pytest.mark.parametrize("value", ["x1", "1.5", 1.5, True, None, [], ""])
def test_to_int_refuses_everything_else_naming_the_argument(value):
    with pytest.raises(
        MirrorError, match=f"job_id must be an integer, got {value!r}".replace("[", r"\[")
    ):
        to_int(value, "job_id")


def test_optional_none_and_service_names():
    assert to_int(None, "rid", optional=True) is None
    assert service_name("jobrun", "5") == "jobrun_5"
