"""Which environment variables a submission may set for its steps.

``MIRROR_*`` belong to Mirror (the job's id, directory, run token, exit
file) and ``LD_*`` steer the dynamic loader of every program a step runs.
"""

from services.common.errors import MirrorError

RESERVED_PREFIXES = ("MIRROR_", "LD_")


def check_submitted(environment):
    """Refuse a submitted environment that sets a reserved variable (`MirrorError`)."""
    for name in environment or {}:
        if str(name).startswith(RESERVED_PREFIXES):
            raise MirrorError(
                f"environment variable {name} is reserved: "
                "a submission cannot set MIRROR_* or LD_* variables"
            )
