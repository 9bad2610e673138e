"""Expected errors: the caller of an RPC method gets ``[-1, str(error)]``."""

from adapters.errors import AdapterError


class MirrorError(Exception):
    """An expected error: the caller gets ``[-1, str(error)]``."""


#: Exceptions answered as ``[-1, message]`` without a traceback in the log.
EXPECTED = (MirrorError, AdapterError)


def job_missing(job_id):
    return MirrorError(f"job is not existed , job : {job_id}")


def package_missing(c_id):
    return MirrorError(f"calcpackage is not existed , calcpackage : {c_id}")


def project_missing(p_id):
    return MirrorError(f"project is not existed , project : {p_id}")


def sweep_missing(sweep_id):
    return MirrorError(f"sweep is not existed , sweep : {sweep_id}")
