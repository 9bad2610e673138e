"""substitute, render_template, build_argv: placeholders, and values that stay literal."""

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
from adapters.substitute import build_argv, render_template, substitute, text_form

BRACES = "a placeholder is {name} with name an identifier; write literal braces as {{ and }}"


def step(value: str, type_: str = "shell") -> Step:
    return Step("s", type_, value, ".", 1, None, None, 9)


# --- substitute -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, text",
    [("a b", "a b"), (True, "true"), (False, "false"), (0.5, "0.5"), (200, "200"), (2.0, "2.0")],
)
def test_text_form(value, text):
    assert text_form(value) == text


def test_substitute_replaces_every_placeholder():
    params = {"model": "wing.dat", "n": 3, "ok": True}
    assert (
        substitute("GRID/{model}/{n}-{ok}-{model}", params, "x") == "GRID/wing.dat/3-true-wing.dat"
    )


def test_double_braces_are_literal():
    assert substitute("{{a}} {{{n}}} }}{{", {"n": 1}, "x") == "{a} {1} }{"


def test_unknown_parameter_names_where():
    with pytest.raises(SubstitutionError) as info:
        substitute("GRID/{foo}", {"model": "x"}, "adapter.xml:12: attribute target")
    assert str(info.value) == "adapter.xml:12: unknown parameter 'foo' in attribute target"
    assert (info.value.filename, info.value.line) == ("adapter.xml", 12)


def test_unknown_parameter_with_a_free_form_where():
    with pytest.raises(SubstitutionError) as info:
        substitute("{foo}", {}, "File target")
    assert str(info.value) == "unknown parameter 'foo' in File target"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("a{b", "unmatched '{' at column 2"),
        ("a}b", "unmatched '}' at column 2"),
        ("{a b}", "bad placeholder '{a b}' at column 1"),
        ("{1x}", "bad placeholder '{1x}' at column 1"),
        ("{}", "bad placeholder '{}' at column 1"),
        ("x{a{b}}", "unmatched '{' at column 2"),
    ],
)
def test_malformed_placeholders(text, problem):
    with pytest.raises(SubstitutionError) as info:
        substitute(text, {"a": 1, "b": 2}, "adapter.xml:3: attribute target")
    assert str(info.value) == f"adapter.xml:3: {problem} in attribute target; {BRACES}"


def test_values_are_not_substituted_again():
    assert substitute("{a}", {"a": "{b}", "b": "no"}, "x") == "{b}"


# --- render_template --------------------------------------------------------------------


def test_render_template():
    text = "# flow input\nmach = {mach}\nalpha = {alpha}\nname = {{literal}}\n"
    out = render_template(text, {"mach": 0.5, "alpha": 0.0}, "flow.in.tpl")
    assert out == "# flow input\nmach = 0.5\nalpha = 0.0\nname = {literal}\n"


def test_render_template_unknown_names_file_and_line():
    with pytest.raises(SubstitutionError) as info:
        render_template("a\nb\nmach = {mach} {foo}\n", {"mach": 1}, "FLOW/flow.in.tpl")
    assert str(info.value) == "FLOW/flow.in.tpl:3: unknown parameter 'foo'"


def test_render_template_bad_brace_names_line_and_column():
    with pytest.raises(SubstitutionError) as info:
        render_template('x\n{"json": 1}\n', {}, "t.tpl")
    assert str(info.value) == f"t.tpl:2: bad placeholder '{{\"json\": 1}}' at column 1; {BRACES}"


def test_render_template_keeps_everything_else():
    text = "€ ü \\ $HOME `x` 'q' \"d\" \r\n\t;"
    assert render_template(text, {}, "t") == text


# --- build_argv -----------------------------------------------------------------------------


def test_shell_argv_quotes_each_value():
    argv = build_argv(step("python grid.py {model} > log"), {"model": "my wing.dat"}, "w")
    assert argv == ["/bin/sh", "-c", "python grid.py 'my wing.dat' > log"]


def test_shell_argv_without_placeholders_is_the_value():
    assert build_argv(step("python flow.py && echo ok"), {}, "w") == [
        "/bin/sh",
        "-c",
        "python flow.py && echo ok",
    ]


def test_exec_argv_splits_first():
    argv = build_argv(
        step("solver --in '{name}.cfg' -n{n}", "exec"), {"name": "a b;c", "n": 4}, "w"
    )
    assert argv == ["solver", "--in", "a b;c.cfg", "-n4"]


def test_exec_empty_value_substitutes_to_empty_argument():
    assert build_argv(step("echo {x}", "exec"), {"x": ""}, "w") == ["echo", ""]


def test_unknown_parameter_in_step():
    with pytest.raises(SubstitutionError) as info:
        build_argv(step("run {nope}"), {}, "adapter.xml:9: attribute value of step 's'")
    assert (
        str(info.value) == "adapter.xml:9: unknown parameter 'nope' in attribute value of step 's'"
    )


def test_nul_in_a_value_is_refused():
    with pytest.raises(SubstitutionError, match="contains a NUL byte"):
        build_argv(step("echo {x}", "exec"), {"x": "a\0b"}, "w")
    with pytest.raises(SubstitutionError, match="contains a NUL byte"):
        build_argv(step("echo {x}"), {"x": "a\0b"}, "w")


def test_exec_unsplittable():
    with pytest.raises(SubstitutionError, match="cannot split command into arguments"):
        build_argv(step("echo 'x", "exec"), {}, "w")


def test_unknown_step_type():
    with pytest.raises(SubstitutionError, match="unknown step type 'bash'"):
        build_argv(step("true", "bash"), {}, "w")


@pytest.mark.parametrize(
    "command, reason",
    [
        ("echo '{x}'", "inside single quotes"),
        ('echo "{x}"', "inside double quotes"),
        ('echo "a \\" {x}"', "inside double quotes"),
        ("echo ok # {x}", "inside a # comment"),
        ("# {x}\necho", "inside a # comment"),
        ("echo \\{x}", "right after a backslash"),
        ("echo ${x}", "right after '$'"),
        ("cat <<EOF\n{x}\nEOF", "after a here-document (<<)"),
        ("echo $(( {x} + 1 ))", "inside arithmetic $(( ))"),
        ("echo `echo {x}`", "inside backquotes (`...`)"),
        ("echo `{x}`", "inside backquotes (`...`)"),
        ("echo $( {x} )", "inside a command substitution $( )"),
        ("echo $({x})", "inside a command substitution $( )"),
        ("echo ${{y:-{x}}}", "inside a parameter expansion ${ }"),
        ('echo "${{y:-{x}}}"', "inside a parameter expansion ${ }"),
        ("echo $[ {x} + 1 ]", "inside arithmetic $[ ]"),
        ("(( n = {x} ))", "inside an arithmetic command (( ))"),
        ("cat <({x})", "inside a process substitution <( )"),
        ("case a in {x}) echo;; esac", "inside a case statement"),
        ("[[ {x} -eq 1 ]]", "in an argument of '[[', which evaluates its arguments"),
        ("declare -i n={x}", "in an argument of 'declare', which evaluates its arguments"),
        ("2>/dev/null eval {x}", "in an argument of 'eval', which evaluates its arguments"),
        ("test -v {x}", "in an argument of 'test' -v, which takes a variable name"),
        ("printf -v {x} y", "in an argument of 'printf' -v, which takes a variable name"),
        ("a[{x}]=1", "right after '['"),
        ("echo *{x}", "right after '*'"),
        ("{x} --flag", "in the command name"),
        ("y=1 ./{x}", "in the command name"),
        ("echo $'a' {x}", "after $' or $\", which the checker cannot follow"),
        (
            "echo $(case a in a) echo;; esac) {x}",
            "after a case statement inside a substitution, which the checker cannot follow",
        ),
    ],
)
def test_shell_placeholder_where_quoting_would_not_hold(command, reason):
    with pytest.raises(SubstitutionError) as info:
        build_argv(step(command), {"x": "v"}, "adapter.xml:4: attribute value")
    assert str(info.value) == (
        f"adapter.xml:4: placeholder {{x}} stands {reason} in attribute value; "
        "parameter values are shell-quoted for you, so write {x} as a bare word"
    )


@pytest.mark.parametrize(
    "command",
    [
        "echo a#b {x}",  # '#' inside a word is no comment
        "echo 'it''s' {x}",
        'echo "a" {x} "b"',
        "echo \\\\ {x}",  # an escaped backslash, then a bare word
        "echo $$ {x}",
        "x={x} env",
        "echo '#' {x}",
        "echo {x}#{x}",
        "case {x} in a) echo;; esac",
        "case a in a) echo;; esac; echo {x}",
        "echo $(date) {x} $((1 + 2)){x} ${{HOME}}{x} `date`{x}",
        'echo "$(echo ")")" {x}',
        "cmd 2>&1 {x} >out",
        "echo > {x}",
        "if true; then echo {x}; fi",
        "for i in {x}; do echo $i; done",
        "{{ echo {x}; }}",
        "printf %s {x}",
        "test {x} = a",
    ],
)
def test_shell_placeholder_bare_words_are_accepted(command):
    build_argv(step(command), {"x": "v"}, "w")


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
