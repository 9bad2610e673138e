"""AdapterError: its text form, its attributes, and the location helpers."""

import pickle

import pytest

from adapters.errors import (
    AdapterError,
    HookError,
    PathEscapeError,
    SubstitutionError,
    UnsafeXMLError,
    UnsafeZipError,
    split_where,
    where_of,
)


def test_message_with_line():
    err = AdapterError("para.xml", 7, "multistate parameter 'alpha' has 2 values, expected 3")
    assert str(err) == "para.xml:7: multistate parameter 'alpha' has 2 values, expected 3"
    assert (err.filename, err.line) == ("para.xml", 7)
    assert err.problem == "multistate parameter 'alpha' has 2 values, expected 3"


def test_message_without_line():
    assert str(AdapterError("package.zip", None, "adapter.xml is missing")) == (
        "package.zip: adapter.xml is missing"
    )


def test_message_without_file_is_the_problem():
    assert (
        str(HookError("", None, "hook x failed: ValueError: y")) == "hook x failed: ValueError: y"
    )


@pytest.mark.parametrize(
    "cls", [UnsafeXMLError, UnsafeZipError, PathEscapeError, SubstitutionError, HookError]
)
def test_every_error_is_an_adapter_error_and_a_value_error(cls):
    err = cls("f", 1, "p")
    assert isinstance(err, AdapterError) and isinstance(err, ValueError)
    assert str(err) == "f:1: p"


def test_errors_survive_pickling():
    err = pickle.loads(pickle.dumps(SubstitutionError("adapter.xml", 3, "unknown parameter 'x'")))
    assert type(err) is SubstitutionError
    assert str(err) == "adapter.xml:3: unknown parameter 'x'"


def test_raising_from_a_cause_keeps_it():
    with pytest.raises(AdapterError) as info:
        try:
            int("x")
        except ValueError as exc:
            raise AdapterError("f", 1, "bad") from exc
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    "where, parts",
    [
        ("adapter.xml:12: attribute target", ("adapter.xml", 12, "attribute target")),
        ("adapter.xml:12", ("adapter.xml", 12, "")),
        ("attribute target", ("", None, "attribute target")),
        ("some: thing", ("", None, "some: thing")),
    ],
)
def test_split_where(where, parts):
    assert split_where(where) == parts


def test_where_of_round_trips():
    assert where_of("adapter.xml", 5, "attribute name") == "adapter.xml:5: attribute name"
    assert split_where(where_of("a.xml", 9, "x")) == ("a.xml", 9, "x")
    assert where_of("", None, "x") == "x"
