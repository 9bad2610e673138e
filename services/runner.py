"""Process supervision: run nameko services in this process, or the parts of ``mirror up`` as children."""

import errno
import logging
import os
import signal
import subprocess
import sys
import time
import warnings

log = logging.getLogger("mirror")


def green():
    """Monkey-patch for the nameko commands (never for the FTP server: it needs epoll)."""
    # eventlet announces its own deprecation on import; nameko 2 needs it all the same.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    # Imported here, by the daemon commands alone: the user commands and the
    # demo run unpatched, so that Ctrl+C interrupts them at once.
    import eventlet

    eventlet.monkey_patch()
    import psycogreen.eventlet

    psycogreen.eventlet.patch_psycopg()


STOP_GRACE = 15


def run_services(classes, config, grace=STOP_GRACE):
    """Run nameko services until SIGTERM or Ctrl+C; always exit within ``2 * grace`` seconds.

    A graceful stop waits for running workers; one stuck on an unreachable
    peer must not keep the process alive, so past ``grace`` the runner is
    killed, and past twice that SIGALRM's default action ends the process.
    """
    # Loaded once green() has patched: eventlet must patch before nameko loads.
    import eventlet
    from nameko.runners import ServiceRunner

    runner = ServiceRunner(config)
    for cls in classes:
        runner.add_service(cls)

    def stop_within_grace():
        stopping = eventlet.spawn(runner.stop)
        try:
            with eventlet.Timeout(grace):
                stopping.wait()
        except eventlet.Timeout:
            log.warning("services did not stop within %ss; killing them", grace)
            runner.kill()

    def shutdown(signum, frame):
        # Signal handlers run on the main loop: hand the stop to a green thread.
        signal.alarm(2 * grace)
        eventlet.spawn_n(stop_within_grace)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("starting %s", ", ".join(cls.name for cls in classes))
    runner.start()
    waiting = eventlet.spawn(runner.wait)
    while True:
        try:
            waiting.wait()
            return
        except OSError as exc:
            # A signal interrupting the hub's wait surfaces here; keep waiting.
            if exc.errno != errno.EINTR:
                raise


def central_services(config):
    from services.central.calcpackage import CalcPackageService
    from services.central.events import EventsService
    from services.central.job import JobService
    from services.central.jobdispatch import JobDispatchService
    from services.central.jobgetdata import JobGetDataService
    from services.central.machine import machine_service
    from services.central.project import ProjectService
    from services.central.sweep import SweepService
    from services.central.user import UserService

    return [
        ProjectService,
        CalcPackageService,
        JobDispatchService,
        JobService,
        JobGetDataService,
        SweepService,
        machine_service(config),
        UserService,
        EventsService,
    ]


def supervise(parts, banner):
    """Run ``{name: command}`` as child processes until Ctrl+C, SIGTERM or a death.

    Logs ``banner`` once every child has started. Each child runs in its own
    session and gets SIGTERM on the way out (SIGKILL 15 s later). Exits with
    code 1 when a child died first.
    """
    children = {}
    stopping = []

    def stop(signum=None, frame=None):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for name, command in parts.items():
            children[name] = subprocess.Popen(command, start_new_session=True)
        log.info("%s", banner)
        while not stopping:
            dead = [n for n, p in children.items() if p.poll() is not None]
            if dead:
                log.error(
                    "%s exited with code %s; stopping the mesh",
                    dead[0],
                    children[dead[0]].returncode,
                )
                stopping.append("child")
                break
            time.sleep(0.2)
    finally:
        for proc in children.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 15
        for proc in children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if stopping and stopping[0] == "child":
        sys.exit(1)
