"""The broker check every command makes first: one clear line and exit code 2 when it is down."""

from services.cli.errors import fail
from services.config import masked


def check_broker(config, timeout=2):
    """Exit with one clear line when the broker cannot be reached."""
    # kombu must load after the daemon commands monkey-patch (services.runner.green).
    from kombu import Connection

    uri = config["AMQP_URI"]
    try:
        with Connection(uri, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure gets the same one line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(
            f"cannot reach the RabbitMQ broker at {masked(uri)} ({reason}); "
            "start one with `mirror up` (a private node where RabbitMQ is installed), "
            "`rabbitmq-server -detached` or `docker compose up -d rabbitmq`, "
            "or point AMQP_URI at a running broker"
        )
