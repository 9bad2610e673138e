"""Hostile parameter values under dash and bash: accepted placements never run a value,
refused ones would, and every value reaches its step as one literal argument."""

import json
import os
import shlex
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.adapter import Step
from adapters.errors import SubstitutionError
from adapters.substitute import build_argv


def step(value: str, type_: str = "shell") -> Step:
    return Step("s", type_, value, ".", 1, None, None, 9)


# --- property: no value breaks out of its quoting -------------------------------------------

# Anything an argv can carry: no NUL, no lone surrogates.
_ARG_CHARS = st.one_of(
    st.sampled_from(list("'\"\\$`;&|<>(){}[]*?!#~=%\n\t -")),
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
)
ARG = st.text(_ARG_CHARS, max_size=24)
HOSTILE = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "a\ntouch PWNED",
    "\\'; touch PWNED #",
    "$'\\x27'; touch PWNED",
    "-n",
    "",
    "*",
    "~root",
    "a[$(touch PWNED)]",
]
ENV = dict(os.environ, LC_ALL="C.UTF-8")


def run(argv, cwd) -> list[str]:
    out = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, check=True, timeout=20)
    fields = out.stdout.split(b"\0")
    assert fields[-1] == b""
    return [f.decode("utf-8") for f in fields[:-1]]


SHELLS = ("/usr/bin/dash", "/bin/bash")


def under(shell: str, argv: list[str]) -> list[str]:
    """``argv`` of a shell step, run by ``shell`` instead of ``/bin/sh``."""
    assert argv[:2] == ["/bin/sh", "-c"]
    return [shell, *argv[1:]]


@settings(max_examples=100, deadline=None)
@given(a=ARG, b=ARG)
@example(a=HOSTILE[0], b=HOSTILE[1])
@example(a=HOSTILE[2], b=HOSTILE[3])
@example(a=HOSTILE[4], b=HOSTILE[5])
@example(a=HOSTILE[6], b=HOSTILE[7])
@example(a=HOSTILE[8], b=HOSTILE[9])
@example(a=HOSTILE[10], b=HOSTILE[11])
def test_shell_values_stay_literal(tmp_path_factory, a, b):
    cwd = tmp_path_factory.mktemp("sh")
    command = "printf '%s\\000' {a} x{b}y {a}{b} \"lit\" {b} $(echo c){a} `echo d`{b}"
    argv = build_argv(step(command), {"a": a, "b": b}, "w")
    for shell in SHELLS:
        assert run(under(shell, argv), cwd) == [a, f"x{b}y", a + b, "lit", b, f"c{a}", f"d{b}"]
    assert not (cwd / "PWNED").exists()


# Pieces of shell syntax a generated placement is made of, with the placeholder
# among them: nested substitutions, quotes, arithmetic, here-documents, commands
# that evaluate their arguments, and plain words.
_SYNTAX = [
    "{v}",
    "{v}",
    "{v}",
    " ",
    " ",
    ";",
    "\n",
    "&&",
    "|",
    "$",
    "(",
    ")",
    "((",
    "))",
    "$((",
    "$(",
    "${{",
    "}}",
    "$[",
    "]",
    "[",
    "`",
    "'",
    '"',
    "\\",
    "#",
    "=",
    "a",
    "x=",
    "*",
    "~",
    "-v ",
    "<<E\n",
    "\nE\n",
    "<(",
    "case ",
    " in ",
    ") ",
    ";; ",
    " esac",
    "eval ",
    "echo ",
    ": ",
    "printf '%s\\n' ",
    "[[ ",
    " -eq 1 ]]",
    "let ",
    "declare -i n=",
    "test ",
    "export ",
    "$'",
    "+ 1",
    "{{ ",
    " }}",
    "a[",
    "]=1",
]
PLACEMENT = st.lists(st.sampled_from(_SYNTAX), min_size=1, max_size=12).map("".join)
MARKER_VALUES = st.one_of(
    st.sampled_from(
        [
            *HOSTILE[:7],
            "a[$(touch PWNED)]",
            "x[`touch PWNED`]",
            "${x:=$(touch PWNED)}",
            "$((a[$(touch PWNED)]))",
            "PWNED); touch PWNED; (",
            "`\n touch PWNED\n`",
        ]
    ),
    ARG.map(lambda s: s + "$(touch PWNED)"),
)


def accepted(command: str, value: str) -> list[str] | None:
    try:
        return build_argv(step(command), {"v": value}, "w")
    except SubstitutionError:
        return None


@settings(max_examples=250, deadline=None)
@given(command=PLACEMENT, value=MARKER_VALUES)
@example(command="echo {v} $(( 1 + 1 )) `echo`", value="$(touch PWNED)")
@example(command="case {v} in a) echo;; esac", value="a[$(touch PWNED)]")
def test_no_accepted_placement_runs_a_value(tmp_path_factory, command, value):
    """Whatever the checker accepts, neither dash nor bash runs what is in the value."""
    argv = accepted(command, value)
    if argv is None:
        return
    cwd = tmp_path_factory.mktemp("place")
    for shell in SHELLS:
        subprocess.run(
            under(shell, argv),
            cwd=cwd,
            env=ENV,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=20,
        )
        assert not (cwd / "PWNED").exists(), (shell, argv[2])


@pytest.mark.parametrize(
    "command, shells",
    [
        ("echo $(( {v} + 1 ))", SHELLS),
        ("echo `echo {v}`", ("/bin/bash",)),
        ('echo "${{x:-{v}}}"', SHELLS),
        ("cat <<E\n{v}\nE", SHELLS),
        ("[[ {v} -eq 1 ]]", ("/bin/bash",)),
        ("declare -i n={v}", ("/bin/bash",)),
        ("test -v {v}", ("/bin/bash",)),
    ],
)
def test_refused_placements_would_run_the_value(tmp_path, command, shells):
    """The placements the checker refuses do run a hostile value when quoted naively."""
    with pytest.raises(SubstitutionError, match="placeholder {v} stands"):
        build_argv(step(command), {"v": "x"}, "w")
    values = ("$(touch PWNED)", "`touch PWNED`", "a[$(touch PWNED)]", "a` `touch PWNED #")
    assert any(_runs(command, v, shells, tmp_path) for v in values)


def _runs(command: str, value: str, shells, cwd) -> bool:
    naive = command.replace("{{", "{").replace("}}", "}").replace("{v}", shlex.quote(value))
    ran = True
    for shell in shells:
        (cwd / "PWNED").unlink(missing_ok=True)
        subprocess.run(
            [shell, "-c", naive],
            cwd=cwd,
            env=ENV,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=20,
        )
        ran = ran and (cwd / "PWNED").exists()
    return ran


@settings(max_examples=150, deadline=None)
@given(a=ARG, b=ARG)
@example(a=HOSTILE[0], b=HOSTILE[2])
@example(a=HOSTILE[4], b=HOSTILE[8])
def test_exec_values_fill_one_argument(tmp_path_factory, a, b):
    cwd = tmp_path_factory.mktemp("exec")
    command = "printf '%s\\000' {a} 'x {b} y' pre{a}post{b}"
    argv = build_argv(step(command, "exec"), {"a": a, "b": b}, "w")
    assert argv == ["printf", "%s\\000", a, f"x {b} y", f"pre{a}post{b}"]
    assert run(argv, cwd) == [a, f"x {b} y", f"pre{a}post{b}"]
    assert not (cwd / "PWNED").exists()


@settings(max_examples=25, deadline=None)
@given(a=ARG)
@example(a=HOSTILE[2])
def test_a_python_step_sees_the_value_as_one_argument(tmp_path_factory, a):
    cwd = tmp_path_factory.mktemp("py")
    script = "import json, sys; sys.stdout.write(json.dumps(sys.argv[1:]) + chr(0))"
    command = f"{sys.executable} -c '{script}' {{a}} --flag={{a}}"
    argv = build_argv(step(command), {"a": a}, "w")
    (seen,) = run(argv, cwd)
    assert json.loads(seen) == [a, f"--flag={a}"]
