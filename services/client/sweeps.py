"""The sweep methods of the Python client (``Mirror`` inherits them)."""

import time

from services.common.jobstates import FINAL


class SweepMethods:
    """One method per call of the ``sweep`` service; the host provides ``call``."""

    def sweep_of(self, job_id):
        """The sweep id of a job (the sweep its dispatch made)."""
        return self.call("job", "query", job_id=job_id)["sweep_id"]

    def sweeps(self, p_id=None, limit=100):
        """The caller's sweeps, newest first, with their counts per state."""
        return self.call("sweep", "list", p_id=p_id, limit=limit)

    def sweep(self, sweep_id):
        """Counts per state and step, progress, estimate and failure summary of a sweep."""
        return self.call("sweep", "query", sweep_id=sweep_id)

    def sweep_jobs(self, sweep_id, state=None, where=None, limit=100, after=0):
        """One page of a sweep's jobs (with parameters) past job id ``after``.

        ``state`` is a state or a list of them; ``where`` a filter over the
        parameters, e.g. ``"mach >= 0.6 and alpha == 2"``.
        """
        if state is not None and not isinstance(state, str):
            state = ",".join(state)
        return self.call(
            "sweep", "jobs", sweep_id=sweep_id, state=state, where=where, limit=limit, after=after
        )

    def iter_sweep_jobs(self, sweep_id, state=None, where=None, page=1000):
        """Every job of a sweep that ``state`` and ``where`` select, page by page."""
        after = 0
        while True:
            jobs = self.sweep_jobs(sweep_id, state, where, limit=page, after=after)
            yield from jobs
            if len(jobs) < page:
                return
            after = jobs[-1]["job_id"]

    def sweep_kill(self, sweep_id, where=None):
        """Stop a sweep's unfinished jobs (those ``where`` selects); answers their ids."""
        return self.call("sweep", "kill", sweep_id=sweep_id, where=where)

    def sweep_retry(self, sweep_id, states=("FAILED", "KILLED"), where=None):
        """A new attempt of a sweep's jobs in ``states``; answers their ids."""
        return self.call("sweep", "retry", sweep_id=sweep_id, states=list(states), where=where)

    def sweep_delete(self, sweep_id, force=False):
        """Delete a sweep and its jobs (``force`` kills the unfinished ones first)."""
        return self.call("sweep", "delete", sweep_id=sweep_id, force=int(bool(force)))

    def sweep_throttle(self, sweep_id, max_running):
        """At most ``max_running`` of the sweep's jobs at once (0 lifts the limit)."""
        return self.call("sweep", "throttle", sweep_id=sweep_id, max_running=max_running)

    def wait_sweep(self, sweep_id, interval=1.0, timeout=None, on_update=None):
        """Wait until every job of the sweep is final; answers its last ``sweep`` record."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            sweep = self.sweep(sweep_id)
            if on_update is not None:
                on_update(sweep)
            if all(n == 0 for s, n in sweep["states"].items() if s not in FINAL):
                return sweep
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for sweep {sweep_id}")
            time.sleep(interval)
