"""Who steps and hooks run as (``AGENT.run_as``), and handing job directories over to that user."""

import os
import pwd
from dataclasses import dataclass

from services.config import ConfigError


@dataclass(frozen=True)
class RunAs:
    """The user steps and hooks run as: ids, supplementary groups, home."""

    name: str
    uid: int
    gid: int
    groups: tuple
    home: str


def resolve(name, euid=None):
    """The `RunAs` of user ``name``, or None for an empty name (run as the agent itself).

    Refused (`ConfigError`) when the user does not exist or the agent is not
    root: only root can start processes as another user.
    """
    if not name:
        return None
    try:
        entry = pwd.getpwnam(str(name))
    except KeyError:
        raise ConfigError(f"AGENT.run_as: user {name!r} does not exist on this machine") from None
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        raise ConfigError(
            f"AGENT.run_as is {name!r}, but the agent runs as uid {euid}, not root: "
            "start the agent as root or leave AGENT.run_as empty"
        )
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


def hand_over(path, run_as):
    """Make ``path`` and everything below it belong to ``run_as``; links are never followed."""
    if run_as is None:
        return
    uid, gid = run_as.uid, run_as.gid
    os.chown(path, uid, gid, follow_symlinks=False)
    for _, dirnames, filenames, dirfd in os.fwalk(path, follow_symlinks=False):
        for name in dirnames + filenames:
            os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
