"""Secrets of users: new bearer tokens, password hashes (scrypt with a salt) and their checks.

Only hashes are stored: a token's sha256 (a token is 256 random bits, so a
fast hash is enough) and a password's scrypt digest (a password may be weak).
"""

import base64
import hashlib
import hmac
import re
import secrets

from services.common.errors import MirrorError
from services.common.identity import RESERVED_NAMES

#: Prefix of every token Mirror issues, so that secret scanners can spot one.
TOKEN_PREFIX = "mirror_"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

# scrypt cost: 16 MiB of memory and about 50 ms per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_LENGTH = 32

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def new_token():
    """A new bearer token: 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_user_name(name):
    """A user name: 1 to 64 letters, digits and ``_.@-``, not a reserved one."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise MirrorError(
            f"user name {name!r} is not valid: 1 to 64 letters, digits, '_', '.', '@' or '-'"
        )
    if name.lower() in RESERVED_NAMES:
        raise MirrorError(f"user name {name!r} is reserved")
    return name


def _scrypt(password, salt, n, r, p):
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=SCRYPT_LENGTH, maxmem=2**26
    )


def hash_password(password):
    """``scrypt$n$r$p$salt$digest`` of ``password`` (salt and digest in base64)."""
    if not isinstance(password, str):
        raise MirrorError("password must be a string")
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise MirrorError(
            f"password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password, stored):
    """True when ``password`` matches the ``stored`` hash (False for no hash or no password).

    Without a hash (an unknown or revoked user) the same scrypt work is done
    anyway, so that the answer's timing does not tell which user names exist.
    """
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return False
    if not stored:
        _scrypt(password, b"no such user", SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        given = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(given, base64.b64decode(digest))
