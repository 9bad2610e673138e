"""Per-machine requests whose caller's deadline passed before this agent took them are dropped."""

import logging

from nameko.contextdata import ContextDataProvider

from services.common.expiry import DEADLINE_KEY, expired, expired_error

log = logging.getLogger(__name__)


class Deadline(ContextDataProvider):
    """Each worker gets its request's deadline (epoch seconds), or None."""

    context_key = DEADLINE_KEY


def drop_expired(deadline, rid):
    """Refuse a request whose deadline passed: its caller gave up and it must not run later."""
    if expired(deadline):
        log.warning("Machine<%s> dropped a request whose caller's deadline passed", rid)
        raise expired_error(rid)
