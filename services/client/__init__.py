"""The Python client of a Mirror mesh.

``Mirror`` (``mirror.py``) wraps a standalone nameko ``ClusterRpcProxy``
(``connection.py``): one method per RPC, each returning the value of a
``[0, value]`` answer or raising ``MirrorError`` with the server's message for
a ``[-1, "message"]`` one.

The module functions (``functions.py``: ``initialize_scheduler_environment``,
``submit_job``, ``get_job_status``, ``get_job_info``, ``stop_job``,
``wait_for_all_jobs`` and the ``graceful_shutdown_on_keyboard_interrupt``
decorator) follow the job submission API of seed 001: a cluster file
(``clusters.py``) names Mirror machines, ``placement.py`` chooses among them,
``scheduler.py`` maps submission ids to Mirror jobs, ``entrypoint.py`` checks
commands and ``abandon.py`` lets go of a connection a Ctrl+C cut.
"""

from services.client.connection import MirrorError

# check_entrypoint and zip_directory are public too, outside ``__all__`` (star imports).
from services.client.entrypoint import check_entrypoint  # noqa: F401
from services.client.functions import (
    configure,
    get_client,
    get_job_info,
    get_job_status,
    get_unified_scheduler,
    graceful_shutdown_on_keyboard_interrupt,
    initialize_scheduler_environment,
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
    "get_unified_scheduler",
    "graceful_shutdown_on_keyboard_interrupt",
    "initialize_scheduler_environment",
    "stop_job",
    "submit_job",
    "wait_for_all_jobs",
]
