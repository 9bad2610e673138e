"""substitute, render_template, build_argv: placeholders, and values that stay literal."""

import pytest

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
