"""The ``where`` language of sweeps: a filter over a job's resolved parameters.

    mach >= 0.6 and alpha == 2
    not (solver in ("a", "b")) or name != 'x'

Parameter names, numbers, quoted strings, the comparisons ``== != < <= > >=``,
``in (...)`` and ``not in (...)``, ``and``, ``or``, ``not`` and parentheses.
Anything else is refused with the position (1-based character) of the
problem. The text is parsed into tuples by hand and evaluated by walking
them: nothing is ever passed to ``eval``.
"""

import re

from services.common.errors import MirrorError

MAX_LENGTH = 2000

COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
KEYWORDS = ("and", "or", "not", "in")

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


class WhereError(MirrorError):
    """A ``where`` expression that cannot be read, with where the problem is."""


def _fail(text, pos, what):
    raise WhereError(f"where: {what} at position {pos + 1} of {text!r}")


def tokenize(text):
    """``[(kind, value, position)]`` of ``text``, ending with an ``end`` token."""
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            _fail(text, pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup
        value = match.group()
        if kind == "number":
            value = float(value) if any(c in value for c in ".eE") else int(value)
        elif kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif kind == "name" and value.lower() in KEYWORDS:
            kind, value = "keyword", value.lower()
        if kind != "space":
            out.append((kind, value, pos))
        pos = match.end()
    out.append(("end", None, len(text)))
    return out


class _Parser:
    """Recursive descent over the tokens; each rule answers a tuple node."""

    def __init__(self, text):
        self.text = text
        self.tokens = tokenize(text)
        self.at = 0

    def peek(self):
        return self.tokens[self.at]

    def take(self):
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, token, wanted):
        kind, value, pos = token
        found = "the end" if kind == "end" else repr(self.text[pos : pos + 20].split()[0])
        _fail(self.text, pos, f"expected {wanted}, found {found}")

    def expect(self, kind, value, wanted):
        token = self.take()
        if token[0] != kind or token[1] != value:
            self.fail(token, wanted)
        return token

    def parse(self):
        node = self.disjunction()
        if self.peek()[0] != "end":
            self.fail(self.peek(), "'and', 'or' or the end")
        return node

    def disjunction(self):
        parts = [self.conjunction()]
        while self.peek()[:2] == ("keyword", "or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def conjunction(self):
        parts = [self.negation()]
        while self.peek()[:2] == ("keyword", "and"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def negation(self):
        if self.peek()[:2] == ("keyword", "not"):
            self.take()
            return ("not", self.negation())
        if self.peek()[:2] == ("punct", "("):
            self.take()
            node = self.disjunction()
            self.expect("punct", ")", "')'")
            return node
        return self.comparison()

    def operand(self):
        token = self.take()
        if token[0] == "name":
            return ("name", token[1])
        if token[0] in ("number", "string"):
            return ("value", token[1])
        self.fail(token, "a parameter name, a number or a string")

    def comparison(self):
        left = self.operand()
        token = self.peek()
        if token[0] == "op":
            self.take()
            return ("cmp", token[1], left, self.operand())
        negate = False
        if token[:2] == ("keyword", "not"):
            self.take()
            negate, token = True, self.peek()
            if token[:2] != ("keyword", "in"):
                self.fail(token, "'in' after 'not'")
        if token[:2] == ("keyword", "in"):
            self.take()
            node = ("in", left, self.choices())
            return ("not", node) if negate else node
        self.fail(token, f"a comparison ({' '.join(COMPARISONS)}) or 'in'")

    def choices(self):
        self.expect("punct", "(", "'(' after 'in'")
        values = [self.literal()]
        while self.peek()[:2] == ("punct", ","):
            self.take()
            values.append(self.literal())
        self.expect("punct", ")", "',' or ')'")
        return values

    def literal(self):
        token = self.take()
        if token[0] not in ("number", "string"):
            self.fail(token, "a number or a string")
        return token[1]


def parse(text):
    """The tree of a ``where`` expression; refuses a bad one with ``WhereError``."""
    if not isinstance(text, str):
        raise WhereError("where must be a string")
    if not text.strip():
        raise WhereError("where is empty")
    if len(text) > MAX_LENGTH:
        raise WhereError(f"where is longer than {MAX_LENGTH} characters")
    return _Parser(text).parse()


def names(tree):
    """The parameter names a tree reads."""
    kind = tree[0]
    if kind == "name":
        return {tree[1]}
    if kind == "value":
        return set()
    if kind in ("and", "or"):
        return set().union(*(names(part) for part in tree[1]))
    if kind == "not":
        return names(tree[1])
    if kind == "cmp":
        return names(tree[2]) | names(tree[3])
    return names(tree[1])  # in


# The value of a parameter a job does not have.
MISSING = object()


def as_number(value):
    """``value`` as a number when it reads as one (parameters are often text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else None
        except ValueError:
            return None
    return None


def compare(op, left, right):
    """``left op right``: numerically when both read as numbers, else as text for == and !=."""
    if left is MISSING or right is MISSING:
        # A job without the parameter matches no comparison but "differs".
        return op == "!="
    a, b = as_number(left), as_number(right)
    if a is None or b is None:
        if op in ("==", "!="):
            return (str(left) == str(right)) == (op == "==")
        a, b = str(left), str(right)
        if as_number(left) is not None or as_number(right) is not None:
            return False
    return {
        "==": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


def _value(node, params):
    if node[0] == "name":
        return params.get(node[1], MISSING)
    return node[1]


def evaluate(tree, params):
    """True when the resolved parameters ``params`` (a dict) satisfy ``tree``."""
    kind = tree[0]
    if kind == "and":
        return all(evaluate(part, params) for part in tree[1])
    if kind == "or":
        return any(evaluate(part, params) for part in tree[1])
    if kind == "not":
        return not evaluate(tree[1], params)
    if kind == "cmp":
        return compare(tree[1], _value(tree[2], params), _value(tree[3], params))
    if kind == "in":
        left = _value(tree[1], params)
        return any(compare("==", left, choice) for choice in tree[2])
    raise WhereError(f"where: cannot evaluate a bare {kind}")


def matcher(text):
    """A ``params -> bool`` predicate for ``text``; None matches every job."""
    if text is None:
        return lambda params: True
    tree = parse(text)
    return lambda params: evaluate(tree, params or {})
