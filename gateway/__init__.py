"""Mirror's HTTP gateway: ``GET|POST /proxy/<service>-<method>`` over nameko RPC (SPEC 8)."""

from .service import GatewayService
from .settings import check_bind, gateway_config

__all__ = ["GatewayService", "check_bind", "gateway_config"]
