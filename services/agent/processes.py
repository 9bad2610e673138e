"""Start step processes in their own session, find them again, and kill whole trees."""

import logging
import os
import signal
import subprocess
import time

import eventlet
import psutil

log = logging.getLogger(__name__)

# The wrapper writes the step's exit code to a file, so that an agent started
# again after a crash can still learn how a step it did not see end finished.
WRAPPER = '"$@"; code=$?; echo $code > "$MIRROR_EXIT_FILE"; exit $code'


def start(argv, *, cwd, env, stdout, stderr):
    """Start ``argv`` as the leader of a new session; return ``(pid, create_time)``."""
    with open(stdout, "ab") as out, open(stderr, "ab") as err:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", WRAPPER, "mirror-step", *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )
    # The reaper owns waitpid; stop the Popen object from reaping this pid.
    proc.returncode = 0
    subprocess._active = [p for p in getattr(subprocess, "_active", []) if p is not proc]
    return proc.pid, create_time(proc.pid)


def create_time(pid):
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def alive(pid, started):
    """Whether ``pid`` is still the process started at ``started`` (never a reused pid)."""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 0.05:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def find_step(job_id, step):
    """``(pid, start time)`` of a job's step process found by its environment, or None.

    For a step whose pid never reached the central record (the agent died
    right after starting it); the wrapper shell is the oldest such process.
    """
    found = []
    for proc in psutil.process_iter(["create_time"]):
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if env.get("MIRROR_JOB_ID") == str(job_id) and env.get("MIRROR_STEP") == step:
            found.append((proc.info["create_time"], proc.pid))
    if not found:
        return None
    started, pid = min(found)
    return pid, started


def token_of(pid):
    """The ``MIRROR_RUN_TOKEN`` a step process carries in its environment."""
    try:
        return psutil.Process(pid).environ().get("MIRROR_RUN_TOKEN")
    except psutil.Error:
        return None


def tree(pid, started, token=None):
    """Every live process of a job: the leader, its descendants, its session, its token."""
    found = {}
    leader = None
    if alive(pid, started):
        leader = psutil.Process(pid)
        found[pid] = leader
        for child in leader.children(recursive=True):
            found[child.pid] = child
    for proc in psutil.process_iter():
        if proc.pid in found or proc.pid == os.getpid():
            continue
        try:
            if leader is not None and os.getsid(proc.pid) == pid:
                found[proc.pid] = proc
            elif token and proc.environ().get("MIRROR_RUN_TOKEN") == token:
                # A daemonised child left the session but kept the environment.
                found[proc.pid] = proc
        except (psutil.Error, OSError):
            continue
    return list(found.values())


def kill_tree(pid, started, token=None, grace=5.0):
    """SIGTERM every process of the job, wait ``grace`` seconds, SIGKILL what is left."""
    procs = tree(pid, started, token)
    if not procs:
        return 0
    if alive(pid, started):
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        procs = [p for p in procs if _running(p)]
        if not procs:
            break
        eventlet.sleep(0.05)
    for proc in procs + tree(pid, started, token):
        try:
            proc.kill()
        except psutil.Error:
            pass
    log.info("killed process tree of pid %s", pid)
    return len(procs)


def _running(proc):
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Reaper:
    """One green thread that reaps the agent's step processes and wakes their waiters.

    It waits on known pids only, so a hook that runs its own subprocess keeps
    its exit code.
    """

    def __init__(self, tick=0.01):
        self.tick = tick
        self._waiters = {}
        self._wake = eventlet.event.Event()
        self._thread = eventlet.spawn(self._loop)

    def wait(self, pid, timeout=None, started=None):
        """``(True, exit code)`` once ``pid`` ended, ``(False, None)`` on timeout.

        The code is None for a process that is not our child (an agent started
        again after a crash sees its jobs' processes re-parented); such a
        process counts as ended once no process with that pid and ``started``
        start time is left, so a reused pid is never taken for it.
        """
        if not pid:
            return True, None
        entry = self._waiters.get(pid)
        if entry is None:
            entry = self._waiters[pid] = (eventlet.event.Event(), started)
        event = entry[0]
        if not self._wake.ready():
            self._wake.send()
        try:
            with eventlet.Timeout(timeout, False):
                return True, event.wait()
            return False, None
        finally:
            if event.ready():
                self._waiters.pop(pid, None)

    def _loop(self):
        while True:
            pending = [(pid, e) for pid, e in self._waiters.items() if not e[0].ready()]
            if not pending:
                self._wake = eventlet.event.Event()
                self._wake.wait()
                continue
            for pid, (event, started) in pending:
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    if not alive(pid, started):
                        event.send(None)
                    continue
                if done:
                    event.send(os.waitstatus_to_exitcode(status))
            eventlet.sleep(self.tick)

    def stop(self):
        self._thread.kill()
