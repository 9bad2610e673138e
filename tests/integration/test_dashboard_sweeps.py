"""The dashboard's sweep views in headless Chromium against a real mesh with two users.

``ann`` dispatches six jobs through the gateway on a machine with one slot;
each job waits for a gate file of its own, so the test decides when each one
ends (the one with ``x=2`` fails). The tab is never reloaded: the list and the
sweep's page follow the jobs through the event stream, the `where` box shows
the service's refusal, kill acts on the filtered jobs and then on the rest.
``bob`` signs in to the same tab and sees his sweep only.
"""

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select

from services.common.jobstates import COMPLETED, FAILED, KILLED, QUEUED
from tests.integration.browser import chromium, click_twice, js, needs_chromium, screenshooter
from tests.integration.conftest import make_package
from tests.integration.test_users import Caller, b64, new_user
from tests.mesh import Mesh, wait_for

pytestmark = needs_chromium

VALUES = [1, 2, 3, 4, 5, 6]
GROUPS = ["a", "a", "b", "b", "c", "c"]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, amqp_uri):
    """Core services and one autorun agent with a single slot; users ann and bob."""
    mesh = Mesh(tmp_path_factory.mktemp("dashboard-sweeps"), amqp_uri, GATEWAY={"auth_cache": 0.5})
    try:
        mesh.start_core()
        mesh.start_agent(1, autorun=True, slots=1)
        mesh.gates = mesh.tmp / "gates"
        mesh.gates.mkdir()
        mesh.ann = Caller(mesh, new_user(mesh, "ann"))
        mesh.bob = Caller(mesh, new_user(mesh, "bob"))
        mesh.tokens = {"ann": mesh.ann.headers["Authorization"][7:]}
        mesh.tokens["bob"] = mesh.bob.headers["Authorization"][7:]
        wait_for(lambda: mesh.http("/proxy/sweep-list")[0] == 401, 10, what="gateway closed")
        yield mesh
    finally:
        mesh.close()


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture
def shots(tmp_path):
    return screenshooter(tmp_path)


def dispatch(caller, name, command, **params):
    """A one-step shell package over multistate ``params``, dispatched by ``caller``."""
    value = command.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    adapter = (
        f'<Adapter name="{name}"><Steps><ExeArgument id="s" type="shell" '
        f'value="{value}" priority="1"/></Steps></Adapter>'
    )
    lines = "".join(
        f'<Param name="{k}" type="str" multistate="1">{";".join(map(str, v))}</Param>'
        for k, v in params.items()
    )
    p_id = caller.ok("project-new", name=name)
    caller.ok(
        "project-upload", p_id=p_id, name="para.xml", content=b64(f"<Para>{lines}</Para>".encode())
    )
    c_id = caller.ok("calcpackage-new", name=name, content=b64(make_package(adapter)))
    ids = caller.ok("jobdispatch-do", p_id=p_id, c_id=c_id)
    return caller.ok("job-query", job_id=ids[0])["sweep_id"], ids


def sign_in(driver, mesh, token):
    driver.get(f"{mesh.base_url}/#/sweeps")
    if js(driver, "return !!sessionStorage.getItem('mirror.token');"):
        driver.find_element("id", "logout").click()
    driver.find_element("id", "token").send_keys(token, Keys.ENTER)
    wait_for(
        lambda: js(driver, "return !!sessionStorage.getItem('mirror.token');"), 10, what="signed in"
    )


def listed(driver):
    """``{sweep id: (done, total)}`` of the sweep list's rows."""
    rows = js(
        driver,
        "return [...document.querySelectorAll('#sweeps tr.sweep')]"
        ".map(r => [Number(r.dataset.sweepId), Number(r.dataset.done), Number(r.dataset.total)]);",
    )
    return {sweep: (done, total) for sweep, done, total in rows}


def counts(driver):
    """``{state: count}`` of the sweep page's bars (None before the page is drawn)."""
    rows = js(
        driver,
        "return [...document.querySelectorAll('#sweep-states tr')]"
        ".map(r => [r.dataset.state, Number(r.dataset.count)]);",
    )
    return {state: n for state, n in rows if n} if rows else None


def job_rows(driver):
    return js(
        driver,
        "return [...document.querySelectorAll('#jobs tr.job')].map(r => Number(r.dataset.jobId));",
    )


def filter_where(driver, text):
    box = driver.find_element("css selector", "input[name=where]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    box.send_keys(text, Keys.ENTER)


def open_gate(mesh, x):
    (mesh.gates / f"go{x}").touch()


def test_sweep_list_page_where_kill_and_throttle(mesh, browser, shots):
    driver = browser
    command = f"while [ ! -e {mesh.gates}/go{{x}} ]; do sleep 0.1; done; test {{x}} != 2"
    sweep_id, ids = dispatch(mesh.ann, "gated", command, x=VALUES, group=GROUPS)
    assert len(ids) == 6

    sign_in(driver, mesh, mesh.tokens["ann"])
    js(driver, "window.neverReloaded = true;")
    wait_for(lambda: listed(driver).get(sweep_id) == (0, 6), 20, what="the sweep listed, 0 of 6")
    wait_for(
        lambda: js(driver, "return document.body.dataset.live;") == "events", 20, what="events"
    )
    driver.find_element("css selector", f'#sweeps tr[data-sweep-id="{sweep_id}"] a').click()
    wait_for(lambda: counts(driver) == {"RUNNING": 1, "QUEUED": 5}, 30, what="1 running, 5 queued")
    wait_for(lambda: job_rows(driver) == ids, 20, what="the sweep's jobs listed")

    # Two jobs end: the page follows without a reload, the failure grouped by value.
    open_gate(mesh, 1)
    open_gate(mesh, 2)
    wait_for(
        lambda: counts(driver) == {COMPLETED: 1, FAILED: 1, "RUNNING": 1, "QUEUED": 3},
        60,
        what="one completed, one failed",
    )
    assert js(driver, "return document.getElementById('sweep-progress').dataset.done;") == "2"
    assert "left" in driver.find_element("id", "sweep-estimate").text
    assert len(driver.find_elements("css selector", "#by-error tr")) == 2
    rate = js(
        driver,
        "return document.querySelector('#by-parameter table[data-param=group] "
        "tr[data-value=a]')?.dataset.rate;",
    )
    assert rate == "0.5"
    shots(driver, "sweep")

    # A bad where: the service's message, with its position, under the box.
    filter_where(driver, "x >= 1 and")
    expected = mesh.ann.refused("sweep-jobs", sweep_id=sweep_id, where="x >= 1 and")
    assert "position 11" in expected
    wait_for(
        lambda: driver.find_element("id", "where-error").text == expected, 20, what="where error"
    )
    assert job_rows(driver) == []
    filter_where(driver, "x >= 4 and group != 'b'")
    wait_for(lambda: job_rows(driver) == ids[4:], 20, what="x >= 4 and group != 'b'")
    assert not driver.find_element("id", "where-error").is_displayed()
    Select(driver.find_element("css selector", "select[name=state]")).select_by_value(QUEUED)
    wait_for(lambda: job_rows(driver) == ids[4:], 20, what="queued and x >= 4")
    Select(driver.find_element("css selector", "select[name=state]")).select_by_value(FAILED)
    wait_for(lambda: job_rows(driver) == [], 20, what="no failed job with x >= 4")
    Select(driver.find_element("css selector", "select[name=state]")).select_by_value("")

    # Throttle: the service's refusal shown, then a limit set.
    field = driver.find_element("id", "throttle-value")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("-1")
    click_twice(driver, "#sweep-throttle-set")
    wait_for(
        lambda: (
            driver.find_element("id", "sweep-outcome").text
            == "Throttle: max_running must be 0 (no limit) or more, not -1"
        ),
        20,
        what="throttle refused",
    )
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("2")
    click_twice(driver, "#sweep-throttle-set")
    wait_for(lambda: "at most 2" in driver.find_element("id", "sweep-throttle").text, 20, what="2")
    assert mesh.ann.ok("sweep-query", sweep_id=sweep_id)["max_running"] == 2

    # Kill what the filter selects (jobs 5 and 6), then, filter cleared, the rest.
    click_twice(driver, "#sweep-kill")
    wait_for(lambda: (counts(driver) or {}).get(KILLED) == 2, 30, what="two killed")
    # The events may show the kills before the call's answer reaches the page.
    wait_for(
        lambda: driver.find_element("id", "sweep-outcome").text == "killed 2 job(s)",
        20,
        what="the kill's outcome",
    )
    states = [mesh.ann.ok("job-query", job_id=j)["state"] for j in ids]
    assert states[4:] == [KILLED, KILLED] and KILLED not in states[:4]
    filter_where(driver, "")
    wait_for(lambda: job_rows(driver) == ids, 20, what="every job listed again")
    click_twice(driver, "#sweep-kill")
    wait_for(
        lambda: counts(driver) == {COMPLETED: 1, FAILED: 1, KILLED: 4}, 60, what="the rest killed"
    )
    assert js(driver, "return document.getElementById('sweep-progress').dataset.done;") == "6"
    states = [mesh.ann.ok("job-query", job_id=j)["state"] for j in ids]
    assert states == [COMPLETED, FAILED, KILLED, KILLED, KILLED, KILLED]

    # Retry: refused where nothing matches, then a new attempt of the failed job.
    filter_where(driver, "x == 1")
    wait_for(lambda: job_rows(driver) == ids[:1], 20, what="x == 1")
    click_twice(driver, "#sweep-retry")
    refusal = f"Retry: sweep {sweep_id} has no FAILED or KILLED job matching 'x == 1' to retry"
    wait_for(lambda: driver.find_element("id", "sweep-outcome").text == refusal, 20, what="refusal")
    filter_where(driver, "x == 2")
    wait_for(lambda: job_rows(driver) == ids[1:2], 20, what="x == 2")
    click_twice(driver, "#sweep-retry")
    wait_for(
        lambda: driver.find_element("id", "sweep-outcome").text == "queued 1 job(s) again",
        20,
        what="retried",
    )
    wait_for(
        lambda: (
            mesh.ann.ok("job-query", job_id=ids[1])["attempts"] == 2
            and counts(driver) == {COMPLETED: 1, FAILED: 1, KILLED: 4}
        ),
        60,
        what="the second attempt failed, shown",
    )
    assert js(driver, "return window.neverReloaded === true;")

    driver.find_element("css selector", "a[href='#/sweeps']").click()
    wait_for(lambda: listed(driver).get(sweep_id) == (6, 6), 20, what="6 of 6 in the list")
    shots(driver, "sweeps")
    mesh.ann_sweep = sweep_id


def test_someone_elses_sweep_is_not_shown(mesh, browser):
    driver = browser
    ann_sweep = getattr(mesh, "ann_sweep", None) or dispatch(mesh.ann, "ann2", "true", x=[1, 2])[0]
    bob_sweep, _ = dispatch(mesh.bob, "bobs", "true", x=[1, 2])
    sign_in(driver, mesh, mesh.tokens["bob"])
    wait_for(lambda: bob_sweep in listed(driver), 20, what="bob's sweep listed")
    assert ann_sweep not in listed(driver)
    js(driver, f"location.hash = '#/sweep/{ann_sweep}';")
    gone = wait_for(lambda: driver.find_elements("id", "gone") or None, 20, what="missing sweep")
    assert gone[0].text.startswith(f"sweep is not existed , sweep : {ann_sweep}")
    assert not driver.find_elements("css selector", "#sweep-states tr")
