"""Per-job read-only FTP credentials: the account a handed-out URL names.

A job's published files live under ``/jobs/<id>/`` on the file server. Each job
has an account of its own, ``job<id>``, whose password is a truncated
HMAC-SHA256 of the user name under a secret that the agents (which build the
URLs) and the file server (which checks them) share and users never see:
``FTP.url_secret``, or, when that is empty, a key derived from the writing
account's password. Nothing is stored per job, and the account reaches that
job's directory alone.
"""

import hashlib
import hmac
import re

JOBS_DIR = "jobs"
# Canonical decimal ids only, so that one job has exactly one account and directory.
JOB_ID = re.compile(r"[1-9][0-9]*")
JOB_USER = re.compile(rf"job({JOB_ID.pattern})")
# 32 hex digits: 128 bits of the HMAC, URL-safe as they are.
PASSWORD_LENGTH = 32
# Keeps the key derived from the writer password apart from any other use of it.
DERIVATION_LABEL = b"mirror ftp job urls\0"


def url_key(ftp_config):
    """The HMAC key of job passwords: ``FTP.url_secret``, else derived from the writer password."""
    secret = str(ftp_config.get("url_secret") or "")
    if secret:
        return secret.encode()
    writer = str(((ftp_config.get("writer") or {}).get("password")) or "")
    return hashlib.sha256(DERIVATION_LABEL + writer.encode()).digest()


def job_user(job_id):
    """The account name of job ``job_id``."""
    return f"job{int(job_id)}"


def job_of_user(username):
    """The job id an account name stands for, or ``None`` when it names no job."""
    match = JOB_USER.fullmatch(str(username))
    return int(match.group(1)) if match else None


def job_password(key, username):
    """The password of the job account ``username`` under ``key``."""
    digest = hmac.new(key, str(username).encode(), hashlib.sha256).hexdigest()
    return digest[:PASSWORD_LENGTH]


def password_matches(key, username, password):
    """Whether ``password`` is that of ``username``, compared in constant time."""
    return hmac.compare_digest(job_password(key, username).encode(), str(password).encode())
