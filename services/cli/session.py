"""How a user command runs: broker check, one client for the command, errors as exit codes."""

import sys

from services.cli.broker import check_broker
from services.cli.errors import CommandError, error
from services.cli.rendering import console


def command(fn):
    """Wrap ``fn(client, args, console)`` as a ``mirror`` handler ``(config, args)``.

    The handler checks the broker first, prints an error as one ``mirror: ...``
    line with exit code 1, and never monkey-patches eventlet: the standalone RPC
    proxy does not need it, and unpatched, Ctrl+C interrupts a command at once.
    """

    def handler(config, args):
        # The client loads nameko, eventlet and kombu; ``mirror central|agent|gateway``
        # parse through the same modules and must monkey-patch before those load.
        from services.client import Mirror, MirrorError

        check_broker(config)
        timeout = (config.get("RPC") or {}).get("timeout", 30)
        try:
            with Mirror(config["AMQP_URI"], config["rpc_exchange"], timeout=timeout) as client:
                code = fn(client, args, console())
        except (MirrorError, CommandError) as exc:
            error(exc)
            code = 1
        except KeyboardInterrupt:
            code = 130
        sys.stdout.flush()
        sys.exit(code or 0)

    handler.__name__ = fn.__name__
    return handler
