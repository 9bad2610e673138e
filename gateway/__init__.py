"""Mirror's HTTP gateway: ``/proxy/<service>-<method>`` over nameko RPC and the REST API (SPEC 8)."""

from .service import GatewayService
from .settings import check_bind, gateway_config

__all__ = ["GatewayService", "check_bind", "gateway_config"]
