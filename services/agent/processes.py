"""Start step processes in their own session, find them again, and kill whole trees."""

import logging
import os
import signal
import subprocess
import time

import eventlet
import psutil
from eventlet.hubs import trampoline

from services.common.nameko_ext import disown_process

log = logging.getLogger(__name__)

# The wrapper appends the step's exit code to the job's ledger, so that an agent
# started again after a crash can still learn how a step it did not see end finished.
WRAPPER = '"$@"; code=$?; echo "exit $MIRROR_RUN_TOKEN $code" >> "$MIRROR_EXIT_FILE"; exit $code'


def start(argv, *, cwd, env, stdout, stderr, run_as=None):
    """Start the step ``argv`` in the exit-code wrapper as the leader of a new session; its pid.

    Its start time (`create_time`) is read only when it must be recorded:
    while unreaped, our own child cannot be mistaken for another process
    (`child_start`).
    """
    with open(stdout, "ab") as out, open(stderr, "ab") as err:
        return spawn(
            ["/bin/sh", "-c", WRAPPER, "mirror-step", *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            run_as=run_as,
        )


def spawn(argv, *, cwd, env, stdin, stdout, stderr, pass_fds=(), run_as=None):
    """Start ``argv`` as the leader of a new session, as ``run_as`` (a `RunAs`) if set; its pid."""
    ids = {}
    if run_as is not None:
        ids = {"user": run_as.uid, "group": run_as.gid, "extra_groups": list(run_as.groups)}
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        pass_fds=pass_fds,
        start_new_session=True,
        close_fds=True,
        **ids,
    )
    # wait_exit owns waitpid for this pid.
    disown_process(proc)
    return proc.pid


def create_time(pid):
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def child_start(pid):
    """The start time of ``pid`` if it is our own child not reaped yet, else None.

    An unreaped child keeps its pid: the start time read is its own.
    """
    if not pid:
        return None
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    return create_time(pid)


def alive(pid, started):
    """Whether ``pid`` is still the process started at ``started`` (never a reused pid).

    Without a start time nothing proves the pid is still the same process:
    it counts as gone.
    """
    if pid is None or started is None:
        return False
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - started) > 0.05:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def find_step(job_id, step, job_dir=None):
    """``(pid, start time)`` of a job's step process found by its environment, or None.

    For a step whose pid never reached the central record (the agent died
    right after starting it); the wrapper shell is the oldest such process.
    With ``job_dir``, only a process of that directory (not of an earlier run).
    A hook's process (``MIRROR_HOOK``) is never taken for the step.
    """
    found = []
    for proc in psutil.process_iter(["create_time"]):
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if job_dir is not None and env.get("MIRROR_JOB_DIR") != str(job_dir):
            continue
        if "MIRROR_HOOK" in env:
            continue
        if env.get("MIRROR_JOB_ID") == str(job_id) and env.get("MIRROR_STEP") == step:
            found.append((proc.info["create_time"], proc.pid))
    if not found:
        return None
    started, pid = min(found)
    return pid, started


def strays(root):
    """``{job id: (pid, start time)}`` of the oldest step process of each job working under ``root``.

    Found by environment (``MIRROR_JOB_ID``, ``MIRROR_JOB_DIR``), as
    :func:`find_step` does; hooks' processes are left out.
    """
    prefix = os.path.join(str(root), "")
    found = {}
    for proc in psutil.process_iter(["create_time"]):
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        job_id, job_dir = env.get("MIRROR_JOB_ID"), env.get("MIRROR_JOB_DIR", "")
        if not job_id or "MIRROR_HOOK" in env or not job_dir.startswith(prefix):
            continue
        seen = found.get(int(job_id))
        if seen is None or proc.info["create_time"] < seen[1]:
            found[int(job_id)] = (proc.pid, proc.info["create_time"])
    return found


def token_of(pid):
    """The ``MIRROR_RUN_TOKEN`` a step process carries in its environment."""
    try:
        return psutil.Process(pid).environ().get("MIRROR_RUN_TOKEN")
    except psutil.Error:
        return None


def leads(pid, started, token):
    """Whether ``pid`` is the step leader started at ``started`` that carries ``token``.

    The token check keeps a forged record (a pid and start time of some other
    process) from ever being signalled: only a step carries a run token.
    """
    return bool(token) and alive(pid, started) and token_of(pid) == token


def tree(pid, started, token=None):
    """Every live process of a job: the leader, its descendants, its session, its token."""
    found = {}
    leader = None
    if leads(pid, started, token):
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
    if leads(pid, started, token):
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


def kill_child(pid):
    """SIGKILL our own child ``pid``, its group and its descendants, then reap it."""
    if child_start(pid) is None:
        return
    procs = []
    try:
        procs = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        pass
    try:
        # Unreaped, the pid (and so its group) is still our child's.
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    wait_exit(pid)


def _running(proc):
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_exit(pid, timeout=None, started=None):
    """``(True, exit code)`` once ``pid`` ended, ``(False, None)`` after ``timeout`` seconds.

    The wait is a green wait on a pidfd, woken by the kernel when the process
    ends: no polling, whatever the number of running steps. The code is None
    for a process that is not our child (after an agent restart the steps are
    re-parented), and for a pid that no longer names the process started at
    ``started``: a reused pid is never taken for the step.
    """
    if not pid:
        return True, None
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        ours = False
    else:
        if done:
            return True, os.waitstatus_to_exitcode(status)
        # Our unreaped child: its pid cannot have been reused.
        ours = True
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True, _reap(pid)
    except OSError:
        return _poll_exit(pid, timeout, started)
    try:
        if not ours and not alive(pid, started):
            return True, None
        try:
            trampoline(fd, read=True, timeout=timeout, timeout_exc=TimeoutError)
        except TimeoutError:
            return False, None
        return True, _reap(pid, block=True)
    finally:
        os.close(fd)


def _reap(pid, block=False):
    """The exit code of child ``pid`` (reaping it), or None if it is not our child."""
    try:
        done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done else None


def _poll_exit(pid, timeout, started, tick=0.05):
    """`wait_exit` for kernels without pidfd_open: poll until the process is gone."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return True, os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            if not alive(pid, started):
                return True, None
        if deadline is not None and time.monotonic() >= deadline:
            return False, None
        eventlet.sleep(tick)
