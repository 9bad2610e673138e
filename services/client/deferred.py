"""Ctrl+C held back until the RPC call under way has its answer.

kombu cannot be interrupted safely mid-call: a ``KeyboardInterrupt`` raised
while a publish waits for its confirm makes kombu close the channel politely,
and that close can wait forever for an answer the broker already sent. So,
in the main thread, SIGINT during a call is noted and handed to the previous
handler once the call is over: a wait bounded by the call's own timeout.
"""

import signal
import threading

_state = threading.local()


class sigint_deferred:
    """Within the block, SIGINT is recorded; at its end, the previous handler gets it."""

    def __enter__(self):
        self.previous = None
        self.pending = None
        if threading.current_thread() is not threading.main_thread() or getattr(
            _state, "active", False
        ):
            return self
        try:
            self.previous = signal.signal(signal.SIGINT, self._note)
        except ValueError:  # not the main interpreter
            return self
        _state.active = True
        return self

    def _note(self, signum, frame):
        self.pending = (signum, frame)

    def __exit__(self, *exc):
        if self.previous is None:
            return
        # The flag drops first: a SIGINT landing between these two lines is still
        # noted by ``_note``, while one that raised after the flag stayed set would
        # leave every later call undeferred.
        _state.active = False
        signal.signal(signal.SIGINT, self.previous)
        if self.pending is not None and callable(self.previous):
            self.previous(*self.pending)
        elif self.pending is not None and self.previous == signal.SIG_DFL:
            raise KeyboardInterrupt
