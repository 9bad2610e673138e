"""``gateway/openapi.json``: a valid OpenAPI 3.1 document naming every route the gateway serves."""

import re

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from werkzeug.routing import Map, Rule

from gateway.dashboard import openapi_document
from gateway.formatting import health_report, job_response
from gateway.service import GatewayService

# The catch-all answers 404 "no route": it serves nothing to describe.
NOT_ROUTES = {"no_route"}
OPERATIONS = ("get", "put", "post", "delete", "patch", "head", "options")


def url_rules():
    """``(method name, url, methods or None)`` of every ``@http`` entrypoint of the gateway."""
    found = []
    for name in dir(GatewayService):
        for entrypoint in getattr(getattr(GatewayService, name), "nameko_entrypoints", ()):
            url = getattr(entrypoint, "url", None)
            if url is None:
                continue
            verbs = entrypoint.method.strip()
            methods = None if verbs == "*" else {m.strip().lower() for m in verbs.split(",")}
            found.append((name, url, methods))
    return found


def sample_url(template):
    """A concrete URL of an OpenAPI path: every ``{name}`` becomes a plain value."""
    return re.sub(r"\{[^}]+\}", "1", template)


@pytest.fixture(scope="module")
def document():
    return openapi_document()


def test_document_is_valid_openapi_3_1(document):
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_url_rule_of_the_gateway_is_described(document):
    rules = url_rules()
    assert {name for name, _, _ in rules} >= {"proxy", "rest_submit", "rest_health", "dashboard"}
    routing = Map([Rule(url, endpoint=name, merge_slashes=False) for name, url, _ in rules])
    adapter = routing.bind("gateway")
    described = {}
    for path, item in document["paths"].items():
        endpoint, _ = adapter.match(sample_url(path), method="GET")
        described.setdefault(endpoint, set()).update(m for m in item if m in OPERATIONS)
    missing = sorted(
        url for name, url, _ in rules if name not in NOT_ROUTES and name not in described
    )
    assert not missing, f"routes not in openapi.json: {missing}"
    for name, url, methods in rules:
        if name in NOT_ROUTES or methods is None:
            continue
        # HEAD goes with GET; every other method a rule serves is an operation.
        assert methods - {"head"} <= described[name], f"{url}: {methods} vs {described[name]}"


def test_described_paths_reach_a_route_of_the_gateway_or_the_events_side(document):
    rules = url_rules()
    routing = Map([Rule(url, endpoint=name, merge_slashes=False) for name, url, _ in rules])
    adapter = routing.bind("gateway")
    # Served by the event-stream side of the gateway when it is installed (brief 18).
    events_side = {"/events", "/metrics", "/files/jobs/{job_id}/{kind}/{key}"}
    for path in document["paths"]:
        endpoint, _ = adapter.match(sample_url(path), method="GET")
        assert endpoint not in NOT_ROUTES or path in events_side, f"{path} reaches no route"


def component(document, name):
    """A schema of the document with its ``$ref`` resolvable, as a validator."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return OAS31Validator(schema)


def test_rest_answers_match_their_schemas(document):
    job = {
        "job_id": 13,
        "state": "RUNNING",
        "name": "counter",
        "ncpus": 2,
        "submit_time": "2025-11-07T10:20:30+00:00",
        "start_time": "2025-11-07T10:20:31+00:00",
        "end_time": None,
        "steps": [{"id": "script", "exit_code": None}],
        "step": "script",
        "metadata": {"account": "p"},
        "time_limit": 30,
    }
    answer = job_response(job, {"stdout": "line 1\n"}, "alpha-1")
    component(document, "QueryAnswer").validate(answer)
    machine = {
        "rid": 1,
        "name": "alpha",
        "online": True,
        "slots": 8,
        "running": 0,
        "used_cores": 0,
        "queued": 0,
        "tags": [],
        "autorun": True,
        "last_heartbeat": "2025-11-07T10:20:30.123456+00:00",
    }
    status, body = health_report([machine])
    component(document, "Health").validate(body)
    status, body = health_report(None, ("broker", "unreachable"))
    assert status == 503
    component(document, "Health").validate(body)
    component(document, "ProxyAnswer").validate([-1, "job is not existed , job : 9"])
    with pytest.raises(Exception, match="enum|const"):
        component(document, "QueryAnswer").validate({**answer, "state": "QUEUED"})
