"""What a server bound beyond loopback must not run with: loopback hosts and placeholder secrets.

The gateway and the file server share these rules: on a loopback host any secret
(even none) will do, since only this machine can connect; beyond it, a secret
that ships with Mirror or its examples is as good as none.
"""

import ipaddress

# Placeholders found in Mirror's examples and in common deployment recipes,
# compared without regard to case.
PLACEHOLDERS = frozenset(
    {
        "change-me-insecure-default-token",
        "change-me",
        "changeme",
        "secret",
        "password",
        "token",
    }
)

# Shortest bearer token accepted beyond loopback (``openssl rand -hex 32`` gives 64).
MIN_TOKEN_LENGTH = 16

HOW_TO_GENERATE = "e.g. from `openssl rand -hex 32`"


def is_loopback_host(host):
    """True when ``host`` (a name or an IPv4/IPv6 address, brackets allowed) is loopback.

    An empty host binds every interface, so it is not loopback.
    """
    host = str(host or "").strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_placeholder(secret):
    """True when ``secret`` is empty or one of :data:`PLACEHOLDERS`."""
    text = str(secret or "").strip().lower()
    return not text or text in PLACEHOLDERS


def is_weak_token(token):
    """True when a bearer token is a placeholder or shorter than :data:`MIN_TOKEN_LENGTH`."""
    return is_placeholder(token) or len(str(token).strip()) < MIN_TOKEN_LENGTH
