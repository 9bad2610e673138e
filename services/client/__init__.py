"""The Python client of a Mirror mesh.

``Mirror`` (``mirror.py``) wraps a standalone nameko ``ClusterRpcProxy``
(``connection.py``): one method per RPC, each returning the value of a
``[0, value]`` answer or raising ``MirrorError`` with the server's message for
a ``[-1, "message"]`` one.

The module functions (``functions.py``: ``submit_job``, ``get_job_status``,
``get_job_info``, ``stop_job``, ``wait_for_all_jobs`` and the
``graceful_shutdown_on_keyboard_interrupt`` decorator) follow the job submission
API of seed 001 on a default client, built from the configuration file
(``--config`` style path, ``$MIRROR_CONFIG`` or ``config/mirror.yaml``) unless
``configure(...)`` sets another. ``entrypoint.py`` checks their commands.
"""

from services.client.connection import MirrorError

# check_entrypoint and zip_directory are public too, outside ``__all__`` (star imports).
from services.client.entrypoint import check_entrypoint  # noqa: F401
from services.client.functions import (
    configure,
    get_client,
    get_job_info,
    get_job_status,
    graceful_shutdown_on_keyboard_interrupt,
    stop_job,
    submit_job,
    wait_for_all_jobs,
)
from services.client.mirror import Mirror, zip_directory  # noqa: F401
from services.common.jobstates import FINAL as FINAL_STATES
from services.common.jobstates import STATES

__all__ = [
    "FINAL_STATES",
    "STATES",
    "Mirror",
    "MirrorError",
    "configure",
    "get_client",
    "get_job_info",
    "get_job_status",
    "graceful_shutdown_on_keyboard_interrupt",
    "stop_job",
    "submit_job",
    "wait_for_all_jobs",
]
