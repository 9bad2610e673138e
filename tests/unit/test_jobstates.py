"""The report change vocabulary: merging deferred changes and applying them to a bundle."""

from services.common.jobstates import FINAL, STATES, apply_changes, merge_changes


def test_final_states_are_states():
    assert FINAL < set(STATES)


def test_merge_later_values_win_and_steps_and_messages_add_up():
    into = {"state": "RUNNING", "message": "a", "steps": {"s1": {"state": "RUNNING"}}}
    merge_changes(
        into,
        {
            "state": "COMPLETED",
            "message": "b",
            "steps": {"s1": {"state": "DONE", "exit_code": 0}, "s2": {"state": "DONE"}},
            "process": {"cpu": 1},
        },
    )
    merge_changes(into, {"process": {"mem": 2}, "message": ""})
    assert into == {
        "state": "COMPLETED",
        "message": "a; b",
        "steps": {"s1": {"state": "DONE", "exit_code": 0}, "s2": {"state": "DONE"}},
        "process": {"cpu": 1, "mem": 2},
    }


def test_apply_changes_updates_the_bundle_as_central_records_it():
    job = {
        "state": "READY",
        "step": "",
        "start_time": "t",
        "steps": [
            {"id": "s1", "state": "DONE", "exit_code": 0, "start_time": "t", "end_time": "t"},
            {"id": "s2", "state": "PENDING", "exit_code": None},
        ],
    }
    apply_changes(job, {"reset_steps": True})
    assert [s["state"] for s in job["steps"]] == ["PENDING", "PENDING"]
    assert job["steps"][0]["exit_code"] is None
    assert job["start_time"] is None  # the time limit counts from the new run
    apply_changes(
        job,
        {"state": "RUNNING", "step": "s2", "message": "m", "steps": {"s2": {"state": "RUNNING"}}},
    )
    assert job["state"] == "RUNNING" and job["step"] == "s2" and "message" not in job
    assert job["steps"][1]["state"] == "RUNNING"
