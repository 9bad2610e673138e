"""Live monitoring (services/agent/livewatch.py) against fakes of central and the file server."""

import os
from pathlib import Path

import pytest
from agent_support import make_job, prepared

from services.agent.livewatch import LiveMonitor

ADAPTER = """<Adapter name="live">
  <Steps>
    <ExeArgument id="solve" type="exec" value="true" priority="1"/>
    <ExeArgument id="post" type="exec" value="true" priority="2"/>
  </Steps>
  <Process>
    <Progress path="out/progress.txt"/>
    <Data key="chart" path="out/chart.dat"/>
  </Process>
</Adapter>"""


@pytest.fixture
def live(machine):
    job, served = make_job(ADAPTER)
    rt = machine(job, served)
    prepared(rt, job)
    # Beats far away: every report below is due to a change.
    rt.interval, rt.progress_missing_after = 3600.0, 3600.0
    monitor = LiveMonitor(rt, job, "solve")
    (Path(job["path"]) / "out").mkdir()
    return rt, job, monitor


def process_reports(rt):
    return [c["process"] for c, _ in rt.central.reports() if c.get("process")]


def warnings(rt):
    return [c["message"] for c, _ in rt.central.reports() if "warning" in c.get("message", "")]


def write(path, text):
    path.write_text(text)
    # A second write within the same clock tick must still look changed.
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_the_first_look_reports_step_counts_then_only_changes_are_reported(live):
    rt, job, monitor = live
    monitor.tick()
    assert process_reports(rt) == [{"currentstep": "0", "allstep": "2"}]
    monitor.tick()
    monitor.tick()
    assert len(process_reports(rt)) == 1  # nothing changed: nothing read, nothing sent

    progress = Path(job["path"]) / "out" / "progress.txt"
    write(progress, "1 10\n")
    monitor.tick()
    write(progress, "1 10\n2 10\n")
    monitor.tick()
    assert [p["currentstep"] for p in process_reports(rt)] == ["0", "1", "2"]
    assert process_reports(rt)[-1]["allstep"] == "10"


def test_a_changed_process_file_is_uploaded_and_its_url_kept(live):
    rt, job, monitor = live
    monitor.tick()
    write(Path(job["path"]) / "out" / "chart.dat", "1 0.5\n")
    monitor.tick()
    url = "ftp://files/jobs/5/process/chart/chart.dat"
    assert process_reports(rt)[-1]["chart"] == url
    assert rt.files.uploaded["/jobs/5/process/chart/chart.dat"] == b"1 0.5\n"
    write(Path(job["path"]) / "out" / "progress.txt", "3 10\n")
    rt.files.uploaded.clear()
    monitor.tick()
    assert process_reports(rt)[-1] == {"currentstep": "3", "allstep": "10", "chart": url}
    assert rt.files.uploaded == {}  # the unchanged chart is not uploaded again


def test_a_progress_file_caught_mid_rewrite_keeps_the_last_value(live):
    rt, job, monitor = live
    progress = Path(job["path"]) / "out" / "progress.txt"
    write(progress, "4 10\n")
    monitor.tick()
    write(progress, "")
    monitor.tick()
    assert [p["currentstep"] for p in process_reports(rt)] == ["4", "4"]


def test_a_beat_reports_the_last_values_without_reading(live):
    rt, job, monitor = live
    write(Path(job["path"]) / "out" / "progress.txt", "5 10\n")
    monitor.tick()
    monitor.next_beat = 0.0
    monitor.tick()
    assert [p["currentstep"] for p in process_reports(rt)] == ["5", "5"]


def test_a_missing_progress_file_is_warned_of_once_naming_its_path(live):
    rt, job, monitor = live
    rt.progress_missing_after = 0.0
    monitor.tick()
    monitor.tick()
    LiveMonitor(rt, job, "post").tick()  # the next step of the same job
    assert warnings(rt) == [
        "warning: Progress file out/progress.txt (in the job directory) has not appeared "
        "after step solve ran 0 s; progress shows step counts instead"
    ]


def test_a_present_progress_file_is_not_warned_of(live):
    rt, job, monitor = live
    rt.progress_missing_after = 0.0
    write(Path(job["path"]) / "out" / "progress.txt", "1 2\n")
    monitor.tick()
    monitor.at_end()
    assert warnings(rt) == []


def test_the_end_of_the_last_step_warns_but_an_earlier_step_does_not(live):
    rt, job, monitor = live
    monitor.at_end()  # "post" is still to run
    assert warnings(rt) == []
    job["steps"][0]["state"] = "DONE"
    LiveMonitor(rt, job, "post").at_end()
    (message,) = warnings(rt)
    assert message.startswith(
        "warning: Progress file out/progress.txt (in the job directory) has not appeared "
        "when step post ended"
    )
