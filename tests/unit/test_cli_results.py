"""The pure parts of ``mirror results`` and ``mirror get --project``: tables, cells, folders."""

from services.cli.manage import folder_names
from services.cli.resulttable import build_table, inline_text, to_csv, url_name

URL = "ftp://job1:secret@127.0.0.1:2121/result/energy/out/energy.txt"


def row(job_id, state, params, process=None, result=None, state_name=""):
    return {
        "job_id": job_id,
        "state": state,
        "state_name": state_name,
        "params": params,
        "process": process or {},
        "result": result or {},
        "error": None,
    }


def test_columns_follow_first_appearance_and_missing_values_are_empty():
    rows = [
        row(1, "COMPLETED", {"x": 1, "mode": "fast"}, {"currentstep": "1", "r": "0.5"}, {"e": URL}),
        row(2, "FAILED", {"x": 2, "extra": True}),
    ]
    headers, groups, body = build_table(rows, resolve=lambda value: f"<{value}>")
    assert headers == ["JOB", "STATE", "x", "mode", "extra", "r", "e"]
    assert groups == ["job", "job", "param", "param", "param", "process", "result"]
    assert body == [
        ["1", "COMPLETED", "1", "fast", "", "<0.5>", f"<{URL}>"],
        ["2", "FAILED", "2", "", "True", "", ""],
    ]


def test_a_key_in_two_groups_is_prefixed_with_its_group():
    rows = [row(1, "COMPLETED", {"T": 300}, {"T": "a"}, {"T": "b", "q": "c"})]
    headers, _, body = build_table(rows)
    assert headers == ["JOB", "STATE", "T", "process.T", "result.T", "q"]
    assert body == [["1", "COMPLETED", "300", "a", "b", "c"]]


def test_no_jobs_is_a_table_of_headers_only():
    assert build_table([]) == (["JOB", "STATE"], ["job", "job"], [])


def test_csv_quotes_what_needs_quoting():
    text = to_csv(["JOB", "name"], [["1", "a,b"], ["2", 'say "hi"']])
    assert text == 'JOB,name\n1,"a,b"\n2,"say ""hi"""\n'


def test_only_a_small_one_line_text_is_shown_inline():
    assert inline_text(b"  42.5 \n\n") == "42.5"
    assert inline_text(b"a\nb\n") is None
    assert inline_text(b"") is None
    assert inline_text(b"\xff\xfe") is None
    assert inline_text(b"1" * 257) is None
    assert url_name(URL) == "energy.txt"
    assert url_name("ftp://job1:s@h:1/result/tree/") == "tree"


def test_folders_are_state_names_made_safe_and_unique():
    rows = [
        row(1, "COMPLETED", {}, state_name="x=1,y=a/b"),
        row(2, "COMPLETED", {}, state_name="x=2"),
        row(3, "COMPLETED", {}, state_name="x=2"),
        row(4, "COMPLETED", {}, state_name=""),
        row(5, "COMPLETED", {}, state_name="..up"),
    ]
    assert folder_names(rows) == {
        1: "x=1,y=a_b",
        2: "x=2.job2",
        3: "x=2.job3",
        4: "job4",
        5: "_.up",
    }
