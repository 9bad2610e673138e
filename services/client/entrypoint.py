"""Entrypoint checks of ``submit_job``: program and script paths must be absolute."""

import os
import shlex

_INTERPRETERS = {
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    "sh",
    "bash",
    "zsh",
    "ksh",
    "dash",
    "perl",
    "ruby",
    "node",
    "Rscript",
    "julia",
    "tclsh",
    "lua",
    "php",
}
# Options of those interpreters that take the next word as their value.
_OPTION_VALUES = {"-W", "-X", "-O", "--rcfile", "--init-file", "-o"}
# Options after which the program is inline text or a module, not a script path.
_NO_SCRIPT = {"--eval", "--command", "-"}


def _interpreter(word):
    name = os.path.basename(word)
    if name in _INTERPRETERS:
        return True
    # python3.11, pypy3.10 ...
    return name.startswith(("python", "pypy")) and name.rstrip("0123456789.") in _INTERPRETERS


def check_entrypoint(entrypoint):
    """Refuse an entrypoint whose program or script is a relative path (``ValueError``).

    ``python /abs/script.py --arg x`` and ``/abs/bin/tool --arg x`` are taken,
    as are commands found on ``PATH`` (``sleep 60``); ``python script.py``,
    ``./run.sh`` and ``bin/tool`` are not. Arguments after the script are free.
    """
    if not isinstance(entrypoint, str) or not entrypoint.strip():
        raise ValueError("entrypoint must be a non-empty command string")
    try:
        words = shlex.split(entrypoint)
    except ValueError as exc:
        raise ValueError(f"entrypoint is not a valid command line: {exc}") from None
    # Leading VAR=value assignments and `env` are not the program.
    while words and ("=" in words[0] and not words[0].startswith(("/", ".", "="))):
        words.pop(0)
    if words and os.path.basename(words[0]) == "env":
        rest = [w for w in words[1:] if "=" not in w or w.startswith("-")]
        if rest and not rest[0].startswith("-"):
            words = rest
    if not words:
        raise ValueError("entrypoint names no program to run")
    program = words[0]
    if "/" in program and not os.path.isabs(program):
        raise ValueError(
            f"entrypoint must use absolute paths: the program {program!r} is a relative path "
            f"(use e.g. {os.path.join('/abs/path', os.path.basename(program))!r})"
        )
    if not _interpreter(program):
        return
    rest = iter(words[1:])
    for word in rest:
        if word in _NO_SCRIPT:
            return
        if word.startswith("-") and not word.startswith("--") and set(word[1:]) & set("cme"):
            # -c CODE, -m MODULE, -e CODE, alone or in a cluster (bash -lc, python -uc).
            return
        if word in _OPTION_VALUES:
            next(rest, None)
            continue
        if word.startswith("-"):
            continue
        if not os.path.isabs(word):
            raise ValueError(
                f"entrypoint must use absolute paths: the script {word!r} is a relative path "
                f"(use e.g. '{os.path.basename(program)} /abs/path/{os.path.basename(word)}')"
            )
        return
