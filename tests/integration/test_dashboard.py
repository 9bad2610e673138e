"""The dashboard in headless Chromium against a real mesh: live states, charts, logs, kill, delete.

The machine has one slot: a slow job holds it, so the demo sweep dispatched
while the overview is open waits QUEUED; killing the slow job from its page
(in a second tab) lets the sweep run, and the first tab, never reloaded, sees
every job reach COMPLETED. Screenshots of each page go to the test's
directory (and to ``$MIRROR_DOCS_SCREENSHOTS`` when set, for docs/img).
"""

import ftplib
import urllib.parse

import pytest
import requests
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select

from adapters.bundled import package_zip, project_files
from services.common.jobstates import COMPLETED, KILLED, QUEUED, RUNNING
from tests.integration.browser import chromium, click_twice, js, needs_chromium, screenshooter
from tests.integration.sweeps import FAST_DEMO
from tests.mesh import Mesh, wait_for

pytestmark = needs_chromium

# The demo's parameter file: iterations of the flow step, one residual point each.
ITERATIONS = 30


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, amqp_uri):
    """Core services and one autorun agent with a single slot, the demo registered."""
    mesh = Mesh(tmp_path_factory.mktemp("dashboard"), amqp_uri)
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, slots=1, env=FAST_DEMO)
        mesh.demo_c_id = mesh.add_package("demo", package_zip("demo"))
        mesh.demo_p_id = mesh.add_project("demo", project_files("demo"))
        yield mesh
    finally:
        mesh.close()


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture
def shots(tmp_path):
    """``shoot(driver, name)``: a screenshot of the current page, kept with the test (and for the docs)."""
    return screenshooter(tmp_path)


def row_states(driver, ids):
    """``{job id: state}`` of the job list's rows for ``ids`` present on the page."""
    found = js(
        driver,
        "return [...document.querySelectorAll('#jobs tr.job')]"
        ".map(r => [Number(r.dataset.jobId), r.dataset.state]);",
    )
    return {job_id: state for job_id, state in found if job_id in ids}


def open_job(driver, mesh, job_id):
    driver.get(f"{mesh.base_url}/#/job/{job_id}")
    wait_for(
        lambda: js(driver, "return document.querySelector('.jobhead')?.dataset.state"),
        20,
        what=f"job page {job_id}",
    )


def files_route(mesh, job_id):
    """True when the gateway serves ``/files`` (the event side of the gateway is installed)."""
    response = requests.get(f"{mesh.base_url}/files/jobs/{job_id}/process/chart", timeout=10)
    return not (response.status_code == 404 and "no route" in response.text)


def residual_text(mesh, job_id):
    """The demo's residual file of ``job_id``, read from the URL jobgetdata.do publishes."""
    url = urllib.parse.urlsplit(mesh.ok("jobgetdata", "do", job_id=job_id)["process"]["chart"])
    chunks = []
    with ftplib.FTP() as ftp:
        ftp.connect(url.hostname, url.port, timeout=20)
        ftp.login(urllib.parse.unquote(url.username), urllib.parse.unquote(url.password))
        ftp.retrbinary(f"RETR {urllib.parse.unquote(url.path)}", chunks.append)
    return b"".join(chunks).decode()


def test_static_files_and_api_pages_are_served(mesh):
    page = requests.get(f"{mesh.base_url}/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "/static/vendor/uplot/uPlot.iife.min.js" in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    script = requests.get(f"{mesh.base_url}/static/app.js", timeout=10)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    escape = requests.get(f"{mesh.base_url}/static/..%2f..%2fservice.py", timeout=10)
    assert escape.status_code == 404 and escape.json()[0] == -1
    assert requests.post(f"{mesh.base_url}/", timeout=10).status_code == 405
    spec = requests.get(f"{mesh.base_url}/openapi.json", timeout=10).json()
    assert spec["openapi"] == "3.1.0" and "/jobs/submit" in spec["paths"]
    assert "docs.js" in requests.get(f"{mesh.base_url}/docs", timeout=10).text


def test_sweep_runs_live_kill_and_delete_from_job_pages(mesh, browser, shots):
    driver = browser
    slow = mesh.ok("jobdispatch", "submit", script="echo started; sleep 600", name="slow")
    mesh.wait_state(slow, RUNNING)

    driver.get(f"{mesh.base_url}/")
    wait_for(lambda: row_states(driver, {slow}) == {slow: RUNNING}, 20, what="slow job listed")
    js(driver, "window.neverReloaded = true;")
    machine = js(driver, "return document.querySelector('#machines tr[data-rid=\"1\"]')?.innerText")
    assert machine and "online" in machine

    ids = mesh.ok("jobdispatch", "do", p_id=mesh.demo_p_id, c_id=mesh.demo_c_id)
    assert len(ids) == 3
    wait_for(
        lambda: row_states(driver, set(ids)) == dict.fromkeys(ids, QUEUED),
        20,
        what="the sweep listed QUEUED",
    )
    shots(driver, "overview")
    queued_bar = js(
        driver,
        f'return document.querySelector(\'#projects tr[data-p-id="{mesh.demo_p_id}"] '
        ".seg[data-state=QUEUED]')?.dataset.count",
    )
    assert queued_bar == "3"

    # The slow job's page in a second tab: live output, then kill.
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    open_job(driver, mesh, slow)
    wait_for(lambda: "started" in driver.find_element("id", "stdout").text, 20, what="live stdout")
    click_twice(driver, "#kill")
    wait_for(
        lambda: js(driver, "return document.querySelector('.jobhead').dataset.state") == KILLED,
        30,
        what="KILLED on the job page",
    )
    assert mesh.ok("job", "query", job_id=slow)["error"]
    shots(driver, "job-killed")

    # The first tab, never reloaded, follows the sweep to its end.
    driver.switch_to.window(first)
    wait_for(
        lambda: row_states(driver, set(ids)) == dict.fromkeys(ids, COMPLETED),
        120,
        interval=0.5,
        what="the sweep listed COMPLETED",
    )
    assert js(driver, "return window.neverReloaded === true;")
    shots(driver, "overview-completed")

    # A finished demo job: steps, progress, chart, results, output.
    job_id = ids[0]
    js(driver, f"location.hash = '#/job/{job_id}';")
    wait_for(
        lambda: (
            js(driver, "return document.querySelectorAll('#steps .trow[data-state=DONE]').length")
            == 3
        ),
        20,
        what="three steps done on the timeline",
    )
    progress = js(
        driver,
        "const p = document.querySelector('.progress'); return [p.dataset.current, p.dataset.all];",
    )
    assert progress[0] == progress[1] != "0"
    wait_for(
        lambda: js(driver, "return document.querySelectorAll('#results a.result').length") == 2,
        20,
        what="two result links",
    )
    wait_for(
        lambda: "post: CL=" in driver.find_element("id", "stdout").text,
        20,
        what="the last step's output",
    )
    chart = f"{job_id}/chart"
    if files_route(mesh, job_id):
        points = wait_for(
            lambda: js(driver, f"return window.mirrorCharts['{chart}']?.data[0].length"),
            20,
            what="the residual chart drawn",
        )
        assert points == ITERATIONS
        link = js(driver, "return document.querySelector('#results a.result').href")
        assert requests.get(link, timeout=10).status_code == 200
    else:
        wait_for(
            lambda: "does not serve /files" in driver.find_element("id", "charts").text,
            20,
            what="the chart's link without /files",
        )
    # The chart code on the demo's own residual file, whichever way the file travels
    # (drawn in the chart's place, where the page has only a link without /files).
    points = js(
        driver,
        "const box = document.querySelector('[data-chart-key=chart]');"
        "if (!window.mirrorCharts['" + chart + "']) box.replaceChildren();"
        "const spare = document.createElement('div'); box.append(spare);"
        "return Charts.show(spare, 'direct', 'residual', arguments[0]);",
        residual_text(mesh, job_id),
    )
    assert points == ITERATIONS
    assert js(driver, "return window.mirrorCharts['direct'].data[1].every(v => v > 0);")
    shots(driver, "job")

    # Delete the killed job from its page.
    driver.switch_to.window(driver.window_handles[1])
    click_twice(driver, "#delete")
    wait_for(lambda: driver.find_elements("id", "gone") or None, 30, what="job gone from its page")
    code, message = mesh.rpc("job", "query", job_id=slow)
    assert code == -1 and "not existed" in message


def test_filters_and_parameter_search(mesh, browser):
    driver = browser
    driver.get(f"{mesh.base_url}/")
    jobs = mesh.ok("job", "list", p_id=mesh.demo_p_id)
    assert jobs, "the sweep of the previous test is listed"
    by_mach = {
        mesh.ok("job", "query", job_id=j["job_id"])["params"]["mach"]: j["job_id"] for j in jobs
    }
    search = driver.find_element("css selector", "input[name=search]")
    search.send_keys("mach=0.6")
    wait_for(
        lambda: set(row_states(driver, {j["job_id"] for j in jobs})) == {by_mach[0.6]},
        20,
        what="the search keeping mach=0.6 alone",
    )
    search.send_keys(Keys.CONTROL, "a")
    search.send_keys(Keys.BACKSPACE)
    everyone = {j["job_id"]: COMPLETED for j in jobs}
    wait_for(lambda: row_states(driver, set(everyone)) == everyone, 20, what="search cleared")
    state = Select(driver.find_element("css selector", "select[name=state]"))
    state.select_by_value(KILLED)
    wait_for(lambda: not row_states(driver, set(everyone)), 20, what="no demo job KILLED")
    state = Select(driver.find_element("css selector", "select[name=state]"))
    state.select_by_value(COMPLETED)
    wait_for(lambda: row_states(driver, set(everyone)) == everyone, 20, what="COMPLETED filter")


def test_docs_page_renders_every_operation_and_tries_a_call(mesh, browser, shots):
    driver = browser
    spec = requests.get(f"{mesh.base_url}/openapi.json", timeout=10).json()
    operations = sum(
        1
        for item in spec["paths"].values()
        for method in item
        if method in ("get", "post", "put", "delete", "head")
    )
    driver.get(f"{mesh.base_url}/docs")
    wait_for(
        lambda: js(driver, "return document.querySelectorAll('details.op').length") == operations,
        20,
        what="every operation rendered",
    )
    health = driver.find_element("id", "health")
    health.find_element("css selector", "summary").click()
    health.find_element("css selector", "form.try button").click()
    answer = wait_for(
        lambda: (
            (text := health.find_element("css selector", "pre.answer").text).startswith("200")
            and text
        ),
        20,
        what="the tried call's answer",
    )
    assert '"service": "mirror-gateway"' in answer
    shots(driver, "docs")
