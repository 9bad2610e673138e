"""The HTTP gateway service: its settings and URL rules, each served by :mod:`gateway.routes`."""

from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.extensions import DependencyProvider

from services.common.cluster import DynamicRpc

from . import dashboard, newt, routes
from .auth import Auth
from .events import EventHub
from .metrics import EventTimer
from .sessions import Sessions
from .settings import check_address, read_settings
from .web import http


class FileServer(DependencyProvider):
    """The ``FTP`` section: where the gateway reads published files."""

    def get_dependency(self, worker_ctx):
        return self.container.config.get("FTP") or {}


class Events(EventHub):
    """The event hub, feeding this process's metrics too."""

    def setup(self):
        super().setup()
        self.listeners.append(EventTimer())


class Settings(DependencyProvider):
    """The parsed ``GATEWAY`` section, checked once when the container starts."""

    def setup(self):
        config = self.container.config
        self.settings = read_settings(config)
        # What nameko really binds: its own default is every interface, so a
        # runner that forgot gateway_config() is refused unless tokens are set.
        bound = config.get(WEB_SERVER_CONFIG_KEY, "0.0.0.0:8000")
        check_address(bound, self.settings.tokens, self.settings.users)

    def get_dependency(self, worker_ctx):
        return self.settings


class GatewayService:
    """``/proxy/<service>-<method>`` to any exposed service, the REST API; JSON everywhere."""

    name = "gateway"

    settings = Settings()
    services = DynamicRpc()
    door = Auth()
    sessions = Sessions()
    newt_settings = newt.NewtConfig()
    hub = Events()
    ftp = FileServer()

    @http("GET,POST", "/proxy/<path:target>")
    def proxy(self, request, target):
        return routes.handle_proxy(request, target, self.settings, self.services, self.door)

    # The Slurm-style REST API (SPEC 8); "*" so that a wrong method gets a JSON 405.
    @http("*", "/jobs/submit")
    def rest_submit(self, request):
        return routes.handle_submit(request, self.settings, self.services, self.door)

    @http("*", "/jobs/query/<job_id>")
    def rest_query(self, request, job_id):
        return routes.handle_query(request, job_id, self.settings, self.services, self.door)

    @http("*", "/jobs/cancel/<job_id>")
    def rest_cancel(self, request, job_id):
        return routes.handle_cancel(request, job_id, self.settings, self.services, self.door)

    @http("*", "/health")
    def rest_health(self, request):
        return routes.handle_health(request, self.settings, self.services, self.door)

    @http("*", "/events")
    def events(self, request):
        return routes.handle_event_stream(
            request, self.settings, self.services, self.door, self.hub
        )

    @http("*", "/files/jobs/<job_id>/<kind>/<path:key>")
    def files(self, request, job_id, kind, key):
        return routes.handle_files(
            request, job_id, kind, key, self.settings, self.services, self.door, self.ftp
        )

    @http("*", "/metrics")
    def metrics(self, request):
        return routes.handle_metrics_route(request, self.settings, self.services, self.door)

    # The machine API of seed 004 (docs/newt.md); the seed's client ends paths with "/".
    @http("*", "/api/auth")
    @http("*", "/api/auth/")
    def newt_auth(self, request):
        door = self.sessions(self.door, request)
        return newt.handle_auth(request, self.settings, self.services, door, self.newt_settings)

    @http("*", "/api/command/<machine>")
    @http("*", "/api/command/<machine>/")
    def newt_command(self, request, machine):
        door = self.sessions(self.door, request)
        return newt.handle_command(
            request, machine, self.settings, self.services, door, self.newt_settings
        )

    @http("*", "/api/job")
    @http("*", "/api/job/")
    def newt_overview(self, request):
        door = self.sessions(self.door, request)
        return newt.handle_overview(request, self.settings, self.services, door)

    @http("*", "/api/job/<machine>")
    @http("*", "/api/job/<machine>/")
    def newt_jobs(self, request, machine):
        door = self.sessions(self.door, request)
        return newt.handle_jobs(request, machine, self.settings, self.services, door)

    @http("*", "/api/job/<machine>/<jobid>")
    @http("*", "/api/job/<machine>/<jobid>/")
    def newt_job(self, request, machine, jobid):
        door = self.sessions(self.door, request)
        return newt.handle_job(request, machine, jobid, self.settings, self.services, door)

    # The dashboard and the described API (gateway/dashboard.py); "*" so that
    # a wrong method gets a JSON 405.
    @http("*", "/")
    def dashboard(self, request):
        return dashboard.handle_index(request)

    @http("*", "/static/<path:path>")
    def dashboard_static(self, request, path):
        return dashboard.handle_static(request, path)

    @http("*", "/openapi.json")
    def openapi(self, request):
        return dashboard.handle_openapi(request)

    @http("*", "/docs")
    def docs(self, request):
        return dashboard.handle_docs(request)

    @http("*", "/<path:path>")
    def no_route(self, request, path):
        return routes.no_route(request)
