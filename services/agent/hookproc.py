"""Call a package's hook in a child process with the job's environment and a time limit.

The child (``python -m adapters.hooks``) loads the hooks module, calls the
hook and writes back what it published and the error it raised; the agent
process never runs a package's code. Request and answer travel in memory
files, so neither side ever blocks on a pipe.
"""

import json
import os
import sys

from adapters.errors import HookError
from services.agent import processes


def call_hook(path, package_key, name, context, *, env, cwd, output, timeout, run_as=None):
    """Call hook ``name`` of the module at ``path`` with ``context``; fill ``context.publish``.

    Raises `HookError` with the hook's own message (``hook gridPre failed:
    ValueError: bad mesh``), or when the hook outlives ``timeout`` seconds
    or its process ends without an answer. The hook's output goes to
    ``output`` (appended).
    """
    request = {
        "path": str(path),
        "package_key": package_key,
        "name": name,
        "context": {
            "job_id": context.job_id,
            "job_dir": context.job_dir,
            "workpath": context.workpath,
            "step": context.step,
            "params": context.params,
            "publish": context.publish,
        },
    }
    if run_as is not None:
        request["user"] = [run_as.uid, run_as.gid, list(run_as.groups)]
    asked = os.memfd_create("mirror-hook-request")
    answer = os.memfd_create("mirror-hook-answer")
    try:
        os.write(asked, json.dumps(request).encode())
        os.lseek(asked, 0, os.SEEK_SET)
        with open(output, "ab") as out:
            pid = processes.spawn(
                [sys.executable, "-I", "-m", "adapters.hooks", str(answer)],
                cwd=cwd,
                env={**env, "MIRROR_HOOK": str(name)},
                stdin=asked,
                stdout=out,
                stderr=out,
                pass_fds=(answer,),
            )
        ended, code = processes.wait_exit(pid, timeout=timeout)
        if not ended:
            processes.kill_child(pid)
            raise HookError(
                "", None, f"hook {name} failed: TimeoutError: still running after {timeout:g} s"
            )
        data = os.pread(answer, os.fstat(answer).st_size, 0)
    finally:
        os.close(asked)
        os.close(answer)
    return apply_outcome(name, context, data, code)


def apply_outcome(name, context, data, code):
    """Copy the child's publish values into ``context``; raise the error it reported."""
    try:
        outcome = json.loads(data)
    except ValueError:
        how = (
            f"was killed by signal {-code}"
            if code is not None and code < 0
            else (f"exited with code {code}")
        )
        raise HookError("", None, f"hook {name} failed: its process {how}") from None
    context.publish.clear()
    context.publish.update(outcome.get("publish") or {})
    if "error" in outcome:
        raise HookError(*outcome["error"])
    return None
