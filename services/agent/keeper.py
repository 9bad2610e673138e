"""The step keeper: a small process that starts an agent's steps, reaps them and records their ends.

``python -m services.agent.keeper FD``: ``FD`` is its end of a Unix socket
pair shared with the agent. Each request is one JSON line ``{"id", "argv",
"cwd", "env", "stdout", "stderr", "ledger", "token", "user", "group",
"groups"}``; the keeper starts ``argv`` as the leader of a new session and
answers ``{"id", "pid", "start"}`` (or ``{"id", "error"}``). When a step ends
it appends ``exit <token> <code>`` to the step's ledger (`services.agent.ledger`),
then tells the agent ``{"exit": pid, "code": code}``: the ledger holds the
exit code first, so an agent killed at any point reads it there once started
again. A death by signal N is recorded as 128 + N, as a shell records it.

Steps start here without the exit-code shell the agent would otherwise put
around each (`services.agent.processes.WRAPPER`): one process per step, not
two. A command that cannot be executed directly (not found, a builtin, a
script without an interpreter line) falls back to that wrapper, which then
says why and writes its own exit line. The keeper outlives its agent: once
the agent is gone it reaps its last steps, then exits.
"""

import json
import os
import selectors
import signal
import socket
import subprocess
import sys

# The fallback for commands exec cannot start; the same text as processes.WRAPPER
# (not imported: the keeper stays a small process with few modules).
WRAPPER = '"$@"; code=$?; echo "exit $MIRROR_RUN_TOKEN $code" >> "$MIRROR_EXIT_FILE"; exit $code'


def start_time(pid):
    """The process's start time in seconds since the epoch, as psutil's ``create_time``."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def exit_code(status):
    """The code a shell would record for a wait status: 128 + N for a death by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Keeper:
    """Started steps by pid: their ledger and run token, and whether the wrapper records their end."""

    def __init__(self, sock):
        self.sock = sock
        self.steps = {}
        self.buffer = b""
        self.connected = True

    def start(self, request):
        """Start one step; its answer."""
        ids = {}
        if request.get("user") is not None:
            ids = {
                "user": request["user"],
                "group": request["group"],
                "extra_groups": request.get("groups") or [],
            }
        argv = request["argv"]
        wrapped = False
        with open(request["stdout"], "ab") as out, open(request["stderr"], "ab") as err:
            options = dict(
                cwd=request["cwd"],
                env=request["env"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
                **ids,
            )
            try:
                proc = subprocess.Popen(argv, **options)
            except OSError as exc:
                if exc.filename == request["cwd"]:
                    raise
                # The shell says why in the step's stderr and records its code (126, 127).
                wrapped = True
                shell = ["/bin/sh", "-c", WRAPPER, "mirror-step", *argv]
                proc = subprocess.Popen(shell, **options)
        # The Popen object is kept until the step is reaped here: dropped, it
        # would be reaped by subprocess's own clean-up, its exit code lost.
        self.steps[proc.pid] = (proc, request["ledger"], request["token"], wrapped)
        return {"pid": proc.pid, "start": start_time(proc.pid)}

    def reap(self):
        """Record the end of every step that ended."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            entry = self.steps.pop(pid, None)
            if entry is None:
                continue
            proc, ledger, token, wrapped = entry
            proc.returncode = code = exit_code(status)
            if not wrapped:
                try:
                    with open(ledger, "a", encoding="utf-8") as out:
                        out.write(f"exit {token} {code}\n")
                except OSError as exc:
                    print(f"keeper: exit of pid {pid} not recorded: {exc}", file=sys.stderr)
            self.send({"exit": pid, "code": code})

    def send(self, message):
        if not self.connected:
            return
        try:
            self.sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            self.connected = False

    def read(self):
        """Serve the requests received; False once the agent closed its end."""
        data = self.sock.recv(1 << 16)
        if not data:
            self.connected = False
            return False
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            request = json.loads(line)
            try:
                answer = self.start(request)
            except (OSError, ValueError, TypeError, KeyError) as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            self.send({"id": request.get("id"), **answer})
        return True


def main(fd):
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    keeper = Keeper(sock)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    # A handler (not SIG_DFL) so that the wake-up byte is written on each child's end.
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    # The agent's terminal and its stop signals are not the keeper's: it ends with its steps.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, "agent")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    while keeper.connected or keeper.steps:
        for key, _ in selector.select(timeout=5.0 if keeper.connected else 1.0):
            if key.data == "child":
                os.read(wake_r, 4096)
            elif not keeper.read():
                selector.unregister(sock)
        keeper.reap()


if __name__ == "__main__":
    main(int(sys.argv[1]))
