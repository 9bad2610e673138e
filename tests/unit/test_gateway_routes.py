"""The REST and ``/proxy`` routes against a fake mesh: codes and bodies of every answer."""

import json

import pytest
from nameko.exceptions import RpcTimeout, UnknownService
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import routes
from gateway.settings import GatewaySettings

SETTINGS = GatewaySettings("127.0.0.1:0", (), ("*",), 1024, 2.0)


class FakeServices:
    """``services.call`` answering from ``answers[(service, method)]`` (a value or an exception)."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def call(self, service, method, kwargs, timeout):
        if (service, method) == ("user", "authenticate"):
            return [0, {"user": None, "users": False}]  # no users: loopback stays open
        self.calls.append((service, method, kwargs))
        answer = self.answers[(service, method)]
        if isinstance(answer, Exception):
            raise answer
        return answer


def request(method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body)
    return Request(
        EnvironBuilder(method=method, path=path, data=data, headers=headers).get_environ()
    )


def answer(response):
    return response.status_code, json.loads(response.get_data())


def query(services, job_id="7"):
    return routes.handle_query(request("GET", f"/jobs/query/{job_id}"), job_id, SETTINGS, services)


def cancel(services, job_id="7"):
    return routes.handle_cancel(
        request("POST", f"/jobs/cancel/{job_id}"), job_id, SETTINGS, services
    )


def test_submit_sends_the_checked_arguments_and_answers_a_string_id():
    services = FakeServices({("jobdispatch", "submit"): [0, 12]})
    body = {"job": {"cpus_per_task": 2}, "script": "true"}
    response = routes.handle_submit(request("POST", "/jobs/submit", body), SETTINGS, services)
    assert answer(response) == (200, {"job_id": "12"})
    ((_, _, kwargs),) = services.calls
    assert kwargs["ncpus"] == 2 and kwargs["script"] == "true"


def test_central_refusing_a_submission_is_400_with_its_message():
    message = "environment variable name 'A-B' is not valid"
    services = FakeServices({("jobdispatch", "submit"): [-1, message]})
    body = {"job": {"environment": {"A-B": "x"}}, "script": "true"}
    response = routes.handle_submit(request("POST", "/jobs/submit", body), SETTINGS, services)
    assert answer(response) == (400, {"detail": message})


@pytest.mark.parametrize(
    ("reply", "status", "detail"),
    [
        ([-1, "job is not existed , job : 7"], 404, "job is not existed , job : 7"),
        ([-1, "internal error: KeyError: 'x'"], 500, "internal error: KeyError: 'x'"),
        ([-1, "job_id must be an integer"], 400, "job_id must be an integer"),
        (UnknownService("job"), 503, "the job service is not running"),
        (RpcTimeout("job.query"), 504, "job.query did not answer within 2 s"),
    ],
)
def test_query_failures(reply, status, detail):
    assert answer(query(FakeServices({("job", "query"): reply}))) == (status, {"detail": detail})


def test_query_of_a_pending_job_asks_no_machine():
    services = FakeServices({("job", "query"): [0, {"job_id": 7, "state": "QUEUED", "rid": None}]})
    status, body = answer(query(services))
    assert status == 200 and body["state"] == "PENDING" and body["detail"]["node_list"] == ""
    assert [call[:2] for call in services.calls] == [("job", "query")]


def test_ids_beyond_the_database_are_404_without_a_call():
    services = FakeServices({})
    detail = {"detail": "job is not existed , job : 2147483648"}
    assert answer(query(services, "2147483648")) == (404, detail)
    assert answer(cancel(services, "2147483648")) == (404, detail)
    assert answer(query(services, "x")) == (
        400,
        {"detail": "job_id must be a positive integer, got 'x'"},
    )
    assert services.calls == []


@pytest.mark.parametrize(
    ("reply", "status", "body"),
    [
        ([0, []], 200, {"msg": "取消成功"}),
        ([-1, "job not running , jobid : 7"], 200, {"msg": "取消成功"}),
        ([-1, "job is not existed , job : 7"], 404, {"detail": "job is not existed , job : 7"}),
        ([-1, "jobkill_1.do refused"], 500, {"detail": "jobkill_1.do refused"}),
    ],
)
def test_cancel_answers(reply, status, body):
    response = cancel(FakeServices({("job", "cancel"): reply}))
    assert answer(response) == (status, body)
    if status == 200:
        # UTF-8 text as it is, as the seeds' service answers, not \u escapes.
        assert response.get_data().decode("utf-8") == '{"msg":"取消成功"}'


@pytest.mark.parametrize(
    ("reply", "status", "broker", "database"),
    [
        (UnknownService("machine"), 503, "central services are not running", None),
        (RpcTimeout("machine.list"), 503, "machine.list did not answer within 2 s", None),
        ([-1, "database is locked"], 503, None, "database is locked"),
        ([0, []], 200, None, None),
    ],
)
def test_health(reply, status, broker, database):
    services = FakeServices({("machine", "list"): reply})
    code, body = answer(routes.handle_health(request("GET", "/health"), SETTINGS, services))
    assert code == status
    assert body["broker"]["error"] == broker
    if broker is None:
        assert body["database"]["error"] == database


def test_wrong_method_and_missing_token():
    services = FakeServices({})
    response = routes.handle_submit(request("GET", "/jobs/submit"), SETTINGS, services)
    assert answer(response) == (405, {"detail": "method GET not allowed on /jobs/submit"})
    assert response.headers["Allow"] == "POST"
    locked = GatewaySettings("127.0.0.1:0", ("t",), ("*",), 1024, 2.0)
    response = routes.handle_health(request("GET", "/health"), locked, services)
    assert answer(response) == (401, {"detail": "missing or wrong bearer token"})
    assert response.headers["WWW-Authenticate"] == "Bearer"
    headers = {"Authorization": "Bearer t"}
    services.answers[("machine", "list")] = [0, []]
    response = routes.handle_health(request("GET", "/health", headers=headers), locked, services)
    assert response.status_code == 200


def test_a_bug_is_answered_as_json_500():
    services = FakeServices({("job", "query"): [0, {"no": "job_id"}]})
    assert answer(query(services)) == (500, {"detail": "internal error: KeyError"})
    broken = GatewaySettings("127.0.0.1:0", (), None, 1024, 2.0)
    proxy = routes.handle_proxy(request("GET", "/proxy/job-query"), "job-query", broken, services)
    assert answer(proxy) == (500, [-1, "internal error: TypeError"])


def test_proxy_passes_the_whole_answer_and_errors_as_lists():
    services = FakeServices({("job", "query"): [-1, "job is not existed , job : 3"]})
    target = "job-query"
    response = routes.handle_proxy(
        request("GET", "/proxy/job-query?job_id=3"), target, SETTINGS, services
    )
    # /proxy passes central's refusal on as it is, with 200.
    assert answer(response) == (200, [-1, "job is not existed , job : 3"])
    assert services.calls == [("job", "query", {"job_id": 3})]
    services.answers[("job", "query")] = UnknownService("job")
    response = routes.handle_proxy(request("GET", "/proxy/job-query"), target, SETTINGS, services)
    assert answer(response) == (404, [-1, "unknown service: job"])
    exposed = GatewaySettings("127.0.0.1:0", (), ("echo*",), 1024, 2.0)
    response = routes.handle_proxy(request("GET", "/proxy/job-query"), target, exposed, services)
    assert answer(response) == (403, [-1, "service job is not exposed"])


def test_no_route():
    assert answer(routes.no_route(request("GET", "/nothing"))) == (404, [-1, "no route: /nothing"])
    response = routes.no_route(request("PUT", "/proxy/x"))
    assert answer(response) == (405, [-1, "method PUT not allowed on /proxy/x"])
    assert response.headers["Allow"] == "GET, HEAD, POST"
    response = routes.no_route(request("GET", "/proxy/"))
    assert answer(response)[0] == 400
