"""The agent's line to the central services: RPC with retries, never the database.

Batching reports is `services.agent.reporting`'s concern; this module sends
what it is given and judges each answer, retried or not.
"""

import logging

import eventlet
from eventlet.queue import LightQueue
from kombu.exceptions import OperationalError
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.errors import MirrorError
from services.common.jobstates import PREPARING
from services.common.nameko_ext import UnackedReplyListener

log = logging.getLogger(__name__)

INTERNAL = "internal error:"

# Failures after which the same call is worth sending again.
TRANSIENT = (RpcTimeout, OperationalError, OSError, ConnectionError, UnknownService)


class CentralUnavailable(MirrorError):
    """The central services did not answer, even after retries."""


def _internal(value):
    """Whether an answer is a fault of the server rather than a refusal."""
    return isinstance(value, str) and value.startswith(INTERNAL)


class CentralClient:
    """Call central services over a small pool of standalone RPC proxies.

    A standalone proxy serves one call at a time, so concurrent green threads
    each take their own from the pool.
    """

    def __init__(self, config, *, size=4, timeout=None, retries=None):
        rpc = config.get("RPC", {})
        self.config = {"AMQP_URI": config["AMQP_URI"], "rpc_exchange": config["rpc_exchange"]}
        self.timeout = timeout or float(rpc.get("timeout", 30))
        self.retries = retries if retries is not None else int(rpc.get("retries", 5))
        self.size = size
        self._pool = LightQueue()
        self._created = 0
        self._all = []

    def _take(self):
        if self._pool.qsize() == 0 and self._created < self.size:
            self._created += 1
            try:
                proxy = ClusterRpcProxy(
                    self.config, timeout=self.timeout, reply_listener_cls=UnackedReplyListener
                )
                cluster = proxy.start()
            except BaseException:
                self._created -= 1
                raise
            self._all.append(proxy)
            return proxy, cluster
        return self._pool.get()

    def _discard(self, entry):
        proxy, _ = entry
        self._created -= 1
        if proxy in self._all:
            self._all.remove(proxy)
        try:
            proxy.stop()
        except Exception:  # noqa: BLE001 - the connection is already broken
            log.debug("closing a broken RPC proxy failed", exc_info=True)

    def _call(self, service, method, kwargs, retries=None, *, internal_unavailable=False):
        """Return ``(code, value, tries)``, retrying transient failures with backoff.

        With ``internal_unavailable``, a fault of the server still answered
        after the last try (a database that stays down) raises
        CentralUnavailable too: the caller keeps what it sent for later.
        """
        delay = 0.2
        retries = self.retries if retries is None else retries
        for attempt in range(1, retries + 2):
            entry = None
            try:
                entry = self._take()
                code, value = getattr(getattr(entry[1], service), method)(**kwargs)
            except TRANSIENT as exc:
                if entry is not None:
                    self._discard(entry)
                if attempt > retries:
                    raise CentralUnavailable(
                        f"central service {service}.{method} unreachable after {attempt} tries: {exc!r}"
                    ) from exc
                log.warning(
                    "%s.%s failed (%r); try %d in %.1fs", service, method, exc, attempt + 1, delay
                )
                eventlet.sleep(delay)
                delay = min(delay * 2, 5)
                continue
            except BaseException:
                if entry is not None:
                    self._discard(entry)
                raise
            self._pool.put(entry)
            if code != 0 and _internal(value) and attempt <= retries:
                # A fault of the server (a database connection cut mid-call): every
                # agent call is conditional or idempotent, so the same call is safe again.
                log.warning(
                    "%s.%s: %s; try %d in %.1fs", service, method, value, attempt + 1, delay
                )
                eventlet.sleep(delay)
                delay = min(delay * 2, 5)
                continue
            if internal_unavailable and code != 0 and _internal(value):
                raise CentralUnavailable(
                    f"central service {service}.{method} failed after {attempt} tries: {value}"
                )
            return code, value, attempt
        raise AssertionError("unreachable")

    def call(self, service, method, *, retries=None, **kwargs):
        """Call ``service.method(**kwargs)``; return its value or raise MirrorError."""
        code, value, _ = self._call(service, method, kwargs, retries)
        if code != 0:
            raise MirrorError(value)
        return value

    # -- the calls agents make ------------------------------------------------
    def fetch(self, job_id, rid=None):
        """A job's bundle; with ``rid``, central refuses a job placed elsewhere."""
        return self.call("job", "fetch", job_id=job_id, rid=rid)

    def claim(self, job_id, rid, *, retried=False):
        """Claim a queued job; a retried claim that had already taken effect counts as done.

        ``retried``: an earlier call of the same claim may have landed unanswered.
        """
        code, value, tries = self._call(
            "job", "claim", {"job_id": job_id, "rid": rid}, internal_unavailable=True
        )
        if code == 0:
            return value
        if retried or tries > 1:
            job = self._claimed_before(job_id, rid)
            if job is not None:
                return job
        raise MirrorError(value)

    def _claimed_before(self, job_id, rid):
        """The bundle of a job an earlier try already claimed for ``rid``, else None."""
        job = self.fetch(job_id)
        return job if job["state"] == PREPARING and job["rid"] == rid else None

    def report(self, job_id, rid, changes, expect=None, attempt=None, *, retried=False):
        """Report a transition; a retried report that had already taken effect counts as done.

        ``attempt`` is sent only when the job's bundle carried one.
        """
        kwargs = {"job_id": job_id, "rid": rid, "changes": changes, "expect": expect}
        if attempt is not None:
            kwargs["attempt"] = attempt
        code, value, tries = self._call("job", "report", kwargs, internal_unavailable=True)
        if code == 0:
            return value
        return self._landed_before(kwargs, value, retried or tries > 1)

    def _landed_before(self, entry, error, retried):
        """The job a refused retry finds already in the reported state, else MirrorError."""
        target = entry["changes"].get("state")
        if retried and target and entry.get("expect"):
            # The first try may have landed and only its reply been lost.
            job = self.fetch(entry["job_id"])
            attempt = entry.get("attempt")
            if (
                job["state"] == target
                and job["rid"] in (entry.get("rid"), None)
                and attempt in (None, job.get("attempts"))
            ):
                return job
        raise MirrorError(error)

    def batch(self, rid, reports, claim=None, retries=None, *, retried=False):
        """Send ``reports`` (and ``claim``) as one ``job.batch`` call.

        Returns ``(outcomes, claimed)``: for each report, in order, the new
        record or the MirrorError refusing it, as `report` would have answered
        (a shorter list if central answered fewer); for the claim, the bundle
        or the MirrorError `claim` would have raised (None without a claim).
        ``retried``: these reports (and claim) may have landed unanswered before.
        """
        code, value, tries = self._call(
            "job",
            "batch",
            {"rid": rid, "reports": reports, "claim": claim},
            retries,
            internal_unavailable=True,
        )
        retried = retried or tries > 1
        if code != 0:
            value = {
                "reports": [[code, value]] * len(reports),
                "claimed": None,
                "claim_error": value,
            }
        outcomes = [
            self._outcome({**entry, "rid": rid}, rcode, rvalue, retried)
            for entry, (rcode, rvalue) in zip(reports, value["reports"], strict=False)
        ]
        if claim is None:
            return outcomes, None
        if value["claimed"] is not None:
            return outcomes, value["claimed"]
        if retried:
            job = self._claimed_before(claim, rid)
            if job is not None:
                return outcomes, job
        return outcomes, MirrorError(value["claim_error"])

    def _outcome(self, entry, code, value, retried):
        """One batched report's outcome, as `report` would have answered it."""
        if code == 0:
            return value
        try:
            return self._landed_before(entry, value, retried)
        except MirrorError as exc:
            return exc

    def close(self):
        for proxy in list(self._all):
            try:
                proxy.stop()
            except Exception:  # noqa: BLE001 - the connection may be broken already
                log.debug("closing an RPC proxy failed", exc_info=True)
        self._all.clear()
