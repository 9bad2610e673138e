"""Requests -> call arguments: ``/proxy`` targets and query values, REST bodies and job fields."""

import io

import pytest

from gateway.errors import BadRequest, BodyTooLarge
from gateway.parsing import (
    coerce_value,
    json_kwargs,
    parse_body,
    parse_job_id,
    parse_target,
    parse_time_limit,
    read_body,
    submit_kwargs,
)


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


@pytest.mark.parametrize("target", ["echo_7hello", "echo_7-", "-hello", "a.b-c", ""])
def test_parse_target_refuses_malformed_targets(target):
    with pytest.raises(BadRequest, match="malformed target"):
        parse_target(target)


def test_a_long_malformed_target_is_cut_in_the_message():
    with pytest.raises(BadRequest) as info:
        parse_target("x" * 1000)
    assert len(info.value.message) == 500 and info.value.message.endswith("...")


def environ(data, length=None):
    length = str(len(data)) if length is None else length
    return {"CONTENT_LENGTH": length, "wsgi.input": io.BytesIO(data)}


def test_read_body_up_to_the_cap():
    assert read_body(environ(b"x" * 8), 8) == b"x" * 8
    # A chunked body has no length: the cap holds on what is read.
    assert read_body(environ(b"abc", length=""), 8) == b"abc"
    for env in (environ(b"x" * 9), environ(b"x" * 9, length="")):
        with pytest.raises(BodyTooLarge, match="request body larger than 8 bytes"):
            read_body(env, 8)


def test_json_bodies():
    assert json_kwargs(b"  ") == {}
    assert json_kwargs(b'{"a": 1}') == {"a": 1}
    with pytest.raises(BadRequest, match="must be a JSON object of keyword arguments"):
        json_kwargs(b"[1]")
    with pytest.raises(BadRequest, match="request body is empty"):
        parse_body(b"")
    with pytest.raises(BadRequest, match="request body is not valid JSON"):
        parse_body(b"{")
    with pytest.raises(BadRequest, match="must be a JSON object with 'job' and 'script'"):
        parse_body(b'"text"')


@pytest.mark.parametrize("text", ["abc", "-1", "1.5", "", "١"])
def test_parse_job_id_refuses_what_is_not_digits(text):
    with pytest.raises(BadRequest, match="job_id must be a positive integer"):
        parse_job_id(text)


@pytest.mark.parametrize(
    ("value", "minutes"),
    [
        (None, None),
        ("", None),
        ("unlimited", None),
        ("INFINITE", None),
        (30, 30),
        ("30", 30),
        (1.5, 1.5),
        ("1.5", 1.5),
        ("2:30", 2.5),
        ("1:30:00", 90),
        ("1-2", 1560),
        ("1-2:30", 1590),
        ("1-0:0:30", 1440.5),
    ],
)
def test_parse_time_limit_reads_slurm_forms(value, minutes):
    assert parse_time_limit(value) == minutes


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (True, "must be a number of minutes"),
        ([5], "must be a number of minutes"),
        ("soon", "must be minutes or a Slurm time"),
        ("1.5:00", "must be minutes or a Slurm time"),
        (0, "must be a positive time"),
        ("0:00", "must be a positive time"),
    ],
)
def test_parse_time_limit_refusals_name_the_field(value, fragment):
    with pytest.raises(BadRequest, match=f"job.time_limit {fragment}"):
        parse_time_limit(value)


def test_submit_kwargs_maps_seed_fields_to_submit_arguments():
    job = {
        "name": "n",
        "environment": {"A": "x", "B": 3},
        "cpus_per_task": "2",
        "time_limit": "1:00:00",
        "current_working_directory": "/w",
        "standard_output": "o-%j",
        "standard_error": "",
        "account": "acct",
        "exclusive": False,
        "anything": [1],
    }
    assert submit_kwargs({"job": job, "script": "echo"}) == {
        "script": "echo",
        "name": "n",
        # Central turns the numbers into strings and checks the names.
        "environment": {"A": "x", "B": 3},
        "ncpus": 2,
        "time_limit": 60,
        "cwd": "/w",
        "stdout": "o-%j",
        "metadata": {"account": "acct", "exclusive": False, "anything": [1], "data_source": "API"},
    }


def test_a_minimal_body_gives_the_defaults():
    assert submit_kwargs({"job": {}, "script": "true"}) == {
        "script": "true",
        "name": "",
        "environment": {},
        "ncpus": 1,
        "time_limit": None,
        "metadata": {"data_source": "API"},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"job": {}}, "missing field: script"),
        ({"script": "x"}, "missing field: job"),
        ({"job": [], "script": "x"}, "job must be an object"),
        ({"job": {}, "script": 5}, "script must be a string, got int"),
        ({"job": {}, "script": " \n"}, "script must not be empty"),
        ({"job": {"cpus_per_task": 0}, "script": "x"}, "job.cpus_per_task must be a positive"),
        ({"job": {"cpus_per_task": True}, "script": "x"}, "job.cpus_per_task must be a positive"),
        ({"job": {"environment": []}, "script": "x"}, "job.environment must be an object"),
        ({"job": {"environment": {"A": None}}, "script": "x"}, "job.environment.A must be"),
        ({"job": {"environment": {"A": True}}, "script": "x"}, "job.environment.A must be"),
        ({"job": {"name": 1}, "script": "x"}, "job.name must be a string"),
        ({"job": {"standard_error": 1}, "script": "x"}, "job.standard_error must be a string"),
        ({"job": {"partition": 1}, "script": "x"}, "job.partition must be a string"),
        ({"job": {"ntasks_per_node": "x"}, "script": "x"}, "job.ntasks_per_node must be"),
        ({"job": {"memory_per_node": []}, "script": "x"}, "job.memory_per_node must be"),
        ({"job": {"exclusive": 1}, "script": "x"}, "job.exclusive must be true or false"),
    ],
)
def test_submit_kwargs_refusals(body, message):
    with pytest.raises(BadRequest) as info:
        submit_kwargs(body)
    assert info.value.message.startswith(message), info.value.message
