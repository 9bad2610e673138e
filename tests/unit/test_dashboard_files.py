"""The dashboard's files: what ``/``, ``/static/<path>`` and ``/docs`` answer, and the demo's address."""

import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import dashboard
from services.cli.demo import dashboard_url


def request(method, path):
    return Request(EnvironBuilder(method=method, path=path).get_environ())


def test_index_is_the_dashboard_page_with_its_policy():
    response = dashboard.handle_index(request("GET", "/"))
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert b"/static/app.js" in response.get_data()
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "relative, mimetype",
    [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("vendor/uplot/uPlot.iife.min.js", "text/javascript"),
        ("docs.html", "text/html"),
    ],
)
def test_static_files_have_their_type(relative, mimetype):
    response = dashboard.handle_static(request("GET", f"/static/{relative}"), relative)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.get_data() == (dashboard.STATIC / relative).read_bytes()


@pytest.mark.parametrize(
    "relative", ["../service.py", "../../setup.cfg", "/etc/passwd", "vendor", "", "nothing.js"]
)
def test_nothing_outside_the_static_files_is_served(relative):
    response = dashboard.handle_static(request("GET", f"/static/{relative}"), relative)
    assert response.status_code == 404
    assert json.loads(response.get_data())[0] == -1


def test_head_answers_the_length_without_a_body():
    response = dashboard.handle_static(request("HEAD", "/static/app.js"), "app.js")
    assert response.status_code == 200 and response.get_data() == b""
    assert response.content_length == (dashboard.STATIC / "app.js").stat().st_size


def test_other_methods_are_json_405():
    response = dashboard.handle_index(request("POST", "/"))
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert json.loads(response.get_data()) == [-1, "method POST not allowed on /"]
    assert dashboard.handle_openapi(request("DELETE", "/openapi.json")).status_code == 405


def test_openapi_and_docs_are_served():
    answer = dashboard.handle_openapi(request("GET", "/openapi.json"))
    assert answer.status_code == 200
    assert json.loads(answer.get_data())["openapi"] == "3.1.0"
    assert b"/static/docs.js" in dashboard.handle_docs(request("GET", "/docs")).get_data()


def test_every_file_the_pages_load_is_shipped():
    for page in ("index.html", "docs.html"):
        text = (dashboard.STATIC / page).read_text()
        for name in text.split('"/static/')[1:]:
            relative = name.split('"', 1)[0]
            assert dashboard.static_file(relative), f"{page} loads missing {relative}"


@pytest.mark.parametrize(
    "address, url",
    [
        ("127.0.0.1:8000", "http://127.0.0.1:8000/"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080/"),
        ("gw.example:80", "http://gw.example:80/"),
        ("[::1]:8000", "http://[::1]:8000/"),
    ],
)
def test_demo_prints_the_dashboard_address(address, url):
    assert dashboard_url({"GATEWAY": {"address": address}}) == url


def test_the_page_loads_every_script_of_the_dashboard():
    page = dashboard.handle_index(request("GET", "/")).get_data(as_text=True)
    scripts = sorted(p.name for p in dashboard.STATIC.glob("*.js") if p.name != "docs.js")
    assert "sweeps.js" in scripts and "sweeppage.js" in scripts
    for name in scripts:
        assert f'<script src="/static/{name}"></script>' in page, name
        served = dashboard.handle_static(request("GET", f"/static/{name}"), name)
        assert served.status_code == 200 and served.mimetype == "text/javascript"
