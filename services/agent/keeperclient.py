"""The agent's side of its step keeper (`services.agent.keeper`): start steps there, learn their ends.

The keeper is started with the first step and talks over a Unix socket pair.
A step's end reaches the agent only after the keeper wrote its exit code to
the ledger. When the keeper is gone (killed, or it never started), waits
fall back to watching the pid (`services.agent.processes.wait_exit`) and
the next step starts a new keeper.
"""

import json
import logging
import subprocess
import sys
from pathlib import Path

import eventlet
from eventlet.event import Event
from eventlet.green import socket

import services
from services.agent import processes
from services.common.errors import MirrorError

log = logging.getLogger(__name__)

# Where ``python -m services.agent.keeper`` finds the package, however the agent was started.
PACKAGE_ROOT = str(Path(services.__file__).resolve().parents[1])
#: Answered to waiters when the keeper is gone: the caller watches the pid instead.
GONE = object()


class KeeperGone(MirrorError):
    """The keeper exited, or could not be reached, before it answered."""


class KeeperClient:
    """One keeper process for the agent process; requests and step ends over its socket."""

    def __init__(self):
        self.proc = None
        self.sock = None
        self.replies = {}
        self.exits = {}
        self.codes = {}
        self.next_id = 0

    def _ensure(self):
        if self.sock is not None:
            return
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.agent.keeper", str(theirs.fileno())],
                cwd=PACKAGE_ROOT,
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                # Its own session: signals to the agent's process group leave it running.
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        eventlet.spawn(self._read, ours, self.proc)
        log.info("step keeper started (pid %s)", self.proc.pid)

    def start(self, argv, *, cwd, env, stdout, stderr, ledger, token, run_as=None):
        """Start a step in the keeper; ``(pid, start time)``.

        MirrorError with the reason if the step cannot start; `KeeperGone` (or
        OSError) if the keeper cannot be reached.
        """
        self._ensure()
        self.next_id += 1
        request = {
            "id": self.next_id,
            "argv": list(argv),
            "cwd": cwd,
            "env": env,
            "stdout": str(stdout),
            "stderr": str(stderr),
            "ledger": str(ledger),
            "token": token,
        }
        if run_as is not None:
            request.update(user=run_as.uid, group=run_as.gid, groups=list(run_as.groups))
        answer = self.replies[self.next_id] = Event()
        try:
            self.sock.sendall(json.dumps(request).encode() + b"\n")
            reply = answer.wait()
        finally:
            self.replies.pop(request["id"], None)
        if reply is GONE:
            raise KeeperGone("the step keeper exited before it answered")
        if "error" in reply:
            raise MirrorError(reply["error"])
        self.exits.setdefault(reply["pid"], Event())
        return reply["pid"], reply["start"]

    def wait(self, pid, timeout=None):
        """``(True, code)`` once the keeper recorded the step's end, ``(False, None)`` on timeout.

        ``(True, GONE)`` when the keeper is gone: the caller watches the pid itself.
        """
        event = self.exits.get(pid)
        if event is None:
            return True, GONE
        if not event.ready():
            with eventlet.Timeout(timeout, False):
                event.wait()
            if not event.ready():
                return False, None
        self.exits.pop(pid, None)
        return True, event.wait()

    def _read(self, sock, proc):
        buffer = b""
        try:
            while True:
                data = sock.recv(1 << 16)
                if not data:
                    break
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._dispatch(json.loads(line))
        except (OSError, ValueError) as exc:
            log.warning("step keeper connection lost: %s", exc)
        finally:
            self._gone(sock, proc)

    def _dispatch(self, message):
        if "exit" in message:
            event = self.exits.setdefault(message["exit"], Event())
            if not event.ready():
                event.send(message["code"])
            return
        event = self.replies.get(message.get("id"))
        if event is not None and not event.ready():
            event.send(message)

    def _gone(self, sock, proc):
        """The keeper exited: every waiter watches its pid, the next step starts a new one."""
        closing = self.sock is not sock
        if not closing:
            self.sock = None
            self.proc = None
        sock.close()
        for events in (self.replies, self.exits):
            for event in events.values():
                if not event.ready():
                    event.send(GONE)
        if proc.poll() is None:
            # Left by this agent, it ends with its last step; otherwise it died.
            eventlet.spawn(proc.wait)
        if not closing:
            log.warning("step keeper (pid %s) exited with %s", proc.pid, proc.returncode)

    def close(self):
        """Leave the keeper: it reaps the running steps and records their ends, then exits."""
        if self.sock is not None:
            sock, self.sock = self.sock, None
            # Shut down, not closed: the reader sees the end and closes it itself.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                sock.close()


def start_step(rt, launch, env, ledger_file, token):
    """Start a step on this machine (a `steprun.Launch`): ``(pid, start time or None, kept)``.

    The step keeper (`services.agent.keeper`) starts it without an exit-code
    shell around it; were the keeper out of reach, the agent starts the step
    itself in that shell.
    """
    options = dict(
        cwd=str(launch.workdir),
        env=env,
        stdout=launch.stdout,
        stderr=launch.stderr,
        run_as=rt.run_as,
    )
    if rt.keeper is not None:
        try:
            pid, started = rt.keeper.start(launch.argv, ledger=ledger_file, token=token, **options)
            return pid, started, True
        except (OSError, KeeperGone) as exc:
            log.warning("step keeper out of reach, the agent starts the step: %s", exc)
    return processes.start(launch.argv, **options), None, False
