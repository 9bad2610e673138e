"""Replace ``{name}`` placeholders with parameter values, and build step argv."""

import shlex

from adapters.adapter import Step
from adapters.errors import SubstitutionError, split_where
from adapters.placeholders import Piece, Placeholder, split_pieces
from adapters.shellquote import check_placements

SHELL = "/bin/sh"


def text_form(value: object) -> str:
    """The text a parameter value is substituted as.

    ``str`` as is, ``bool`` as ``true`` / ``false``, numbers as ``str()``
    gives them (``0.5`` -> ``"0.5"``, ``200`` -> ``"200"``).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _where_locator(where: str):
    """Errors for a one-line text located by ``where`` (``file:line: what``)."""
    filename, line, what = split_where(where)
    suffix = f" in {what}" if what else ""

    def locate(_offset: int, problem: str) -> SubstitutionError:
        # The location goes before any hint: "bad placeholder ... in attribute x; hint".
        head, sep, hint = problem.partition("; ")
        return SubstitutionError(filename, line, f"{head}{suffix}{sep}{hint}")

    return locate


def _template_locator(text: str, filename: str):
    """Errors for a template file: the line is found from the offset."""

    def locate(offset: int, problem: str) -> SubstitutionError:
        return SubstitutionError(filename, text.count("\n", 0, offset) + 1, problem)

    return locate


def _fill(pieces: list[Piece], params: dict, locate, quote=None) -> str:
    out = []
    for piece in pieces:
        if isinstance(piece, Placeholder):
            if piece.name not in params:
                raise locate(piece.offset, f"unknown parameter {piece.name!r}")
            value = text_form(params[piece.name])
            out.append(quote(value) if quote else value)
        else:
            out.append(piece)
    return "".join(out)


def substitute(text: str, params: dict, where: str) -> str:
    """Replace every ``{name}`` in ``text`` with the text form of ``params[name]``.

    ``{{`` and ``}}`` are literal braces. ``where`` locates ``text`` for errors,
    best as ``"adapter.xml:12: attribute target"``: an unknown name then raises
    `SubstitutionError` ``adapter.xml:12: unknown parameter 'foo' in attribute target``.
    """
    locate = _where_locator(where)
    return _fill(split_pieces(text, locate), params, locate)


def render_template(text: str, params: dict, filename: str) -> str:
    """`substitute` over a whole template file; errors name ``filename`` and the line."""
    locate = _template_locator(text, filename)
    return _fill(split_pieces(text, locate), params, locate)


def _no_nul(argv: list[str], locate) -> list[str]:
    # The kernel cannot pass a NUL inside an argument; say so instead of letting
    # subprocess fail with a bare ValueError.
    for arg in argv:
        if "\0" in arg:
            raise locate(0, "a substituted parameter value contains a NUL byte")
    return argv


def shell_command(value: str, params: dict, where: str) -> str:
    """The ``/bin/sh -c`` command of a shell step, each value one quoted literal."""
    locate = _where_locator(where)
    pieces = split_pieces(value, locate)
    check_placements(pieces, locate)
    return _fill(pieces, params, locate, quote=shlex.quote)


def exec_argv(value: str, params: dict, where: str) -> list[str]:
    """The argv of an exec step: split first, then fill each argument."""
    locate = _where_locator(where)
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise locate(0, f"cannot split command into arguments: {exc}") from exc
    if not words:
        raise locate(0, "command is empty")
    return [_fill(split_pieces(word, locate), params, locate) for word in words]


def build_argv(step: Step, params: dict, where: str) -> list[str]:
    """The argv that runs ``step`` with ``params``.

    ``type="shell"``: ``["/bin/sh", "-c", command]``, each substituted value
    inserted as one ``shlex.quote``'d word (placeholders inside quotes, comments
    or here-documents are refused). ``type="exec"``: ``shlex.split`` of the
    value, then placeholders filled inside each argument, so a value fills part
    of one argument and never splits into more.
    """
    locate = _where_locator(where)
    if step.type == "shell":
        argv = [SHELL, "-c", shell_command(step.value, params, where)]
    elif step.type == "exec":
        argv = exec_argv(step.value, params, where)
    else:
        raise locate(0, f"unknown step type {step.type!r}")
    return _no_nul(argv, locate)
