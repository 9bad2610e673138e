"""parse_params: the parameter file of SPEC section 5, its rules, errors and speed."""

from xml.sax.saxutils import escape

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adapters.errors import AdapterError, PathEscapeError, UnsafeXMLError
from adapters.params import (
    State,
    count_states,
    join_values,
    parse_params,
    resolved_bytes,
    split_values,
)

IDENT = "(letters, digits and '_', not starting with a digit, not a Python keyword)"

ERRORS = [
    ("zip_unequal.xml", "7: multistate parameter 'alpha' has 2 values, expected 3"),
    (
        "unknown_type.xml",
        "3: parameter 'x' has unknown type 'double' (expected int, float, str, bool, file)",
    ),
    ("bad_int.xml", "4: parameter 'iterations' value '2OO' is not an int"),
    ("bad_int_multistate.xml", "3: parameter 'n' value 'three' is not an int"),
    ("bad_float.xml", "3: parameter 'mach' value '0,6' is not a float"),
    ("bad_float_nan.xml", "3: parameter 'mach' value 'nan' is not a finite float"),
    (
        "bad_bool.xml",
        "3: parameter 'restart' value 'maybe' is not a bool (true/false, 1/0, yes/no)",
    ),
    ("duplicate.xml", "5: duplicate parameter 'mach' (first at line 3)"),
    ("bad_name.xml", f"3: parameter name 'angle of attack' is not an identifier {IDENT}"),
    ("keyword_name.xml", f"3: parameter name 'class' is not an identifier {IDENT}"),
    ("missing_name.xml", "3: <Param> is missing the required attribute 'name'"),
    ("empty_multistate.xml", "3: multistate parameter 'mach' has no values"),
    (
        "bad_multistate_flag.xml",
        "3: attribute multistate of parameter 'mach' must be 0 or 1, got 'yes'",
    ),
    ("ncpus_zero.xml", "3: NCPUS must be a positive int, got '0'"),
    ("ncpus_not_int.xml", "3: parameter 'NCPUS' value 'two' is not an int"),
    ("ncpus_wrong_type.xml", "3: NCPUS must have type=\"int\", not 'float'"),
    ("ncpus_multistate_bad.xml", "3: NCPUS must be a positive int, got '-4'"),
    ("time_limit_negative.xml", "3: TIME_LIMIT must be a positive number of minutes, got '-5'"),
    ("time_limit_zero.xml", "3: TIME_LIMIT must be a positive number of minutes, got '0'"),
    (
        "time_limit_wrong_type.xml",
        '3: TIME_LIMIT must have type="int" or type="float", not \'str\'',
    ),
    ("time_limit_not_number.xml", "3: parameter 'TIME_LIMIT' value 'ten' is not a float"),
    ("bad_states.xml", "2: states must be 'zip' or 'product', got 'cartesian'"),
    ("root_not_para.xml", "2: root element is <Params>, expected <Para>"),
    ("unknown_element.xml", "4: unknown element <Parm> in <Para> (expected <Param>)"),
    (
        "unknown_attribute.xml",
        "3: <Param> has an unknown attribute 'kind' (allowed: name, type, multistate)",
    ),
    ("unknown_root_attribute.xml", "2: <Para> has an unknown attribute 'mode' (allowed: states)"),
    ("child_element.xml", "3: <Param> must hold only text, found element <b>"),
    ("stray_text.xml", "2: unexpected text in <Para>"),
    ("file_escape.xml", "3: parameter 'model' '../../etc/passwd' escapes the project directory"),
    (
        "file_absolute.xml",
        "3: parameter 'model' '/etc/passwd' is absolute; "
        "paths must be relative to the project directory",
    ),
    ("entity.xml", "2: DOCTYPE declarations (DTDs) and entities are not allowed"),
]


@pytest.mark.parametrize("name, expected", ERRORS, ids=[e[0] for e in ERRORS])
def test_error(fixture_bytes, name, expected):
    data = fixture_bytes(f"params/{name}")
    with pytest.raises(AdapterError) as info:
        parse_params(data)
    assert str(info.value) == f"para.xml:{expected}"
    with pytest.raises(AdapterError) as info:
        count_states(data, "proj/para.xml")
    assert str(info.value) == f"proj/para.xml:{expected}"


def test_error_kinds(fixture_bytes):
    with pytest.raises(PathEscapeError):
        parse_params(fixture_bytes("params/file_escape.xml"))
    with pytest.raises(UnsafeXMLError):
        parse_params(fixture_bytes("params/entity.xml"))


def test_spec_example(fixture_bytes):
    states = parse_params(fixture_bytes("params/spec_example.xml"))
    assert [s.name for s in states] == ["mach=0.5,alpha=0", "mach=0.6,alpha=2", "mach=0.7,alpha=4"]
    assert [s.index for s in states] == [0, 1, 2]
    assert states[1].params == {
        "model": "wing.dat",
        "NCPUS": 1,
        "iterations": 200,
        "mach": 0.6,
        "alpha": 2.0,
    }
    assert isinstance(states[0].params["alpha"], float)
    assert count_states(fixture_bytes("params/spec_example.xml")) == 3


def test_product_first_parameter_varies_slowest(fixture_bytes):
    states = parse_params(fixture_bytes("params/product.xml"))
    assert [s.name for s in states] == [
        "solver=roe,cfl=0.5",
        "solver=roe,cfl=1.0",
        "solver=roe,cfl=2",
        "solver=ausm,cfl=0.5",
        "solver=ausm,cfl=1.0",
        "solver=ausm,cfl=2",
    ]
    assert states[5].params == {"solver": "ausm", "TIME_LIMIT": 1.5, "cfl": 2.0, "NCPUS": 4}
    assert count_states(fixture_bytes("params/product.xml")) == 6


def test_no_multistate_gives_one_default_state(fixture_bytes):
    states = parse_params(fixture_bytes("params/single_state.xml"))
    assert states == [
        State(0, "default", {"title": "wing; sweep\nsecond line", "steps": "10", "NCPUS": 1})
    ]
    assert count_states(fixture_bytes("params/single_state.xml")) == 1


def test_types(fixture_bytes):
    states = parse_params(fixture_bytes("params/types.xml"))
    params = states[0].params
    assert params["i"] == -42 and type(params["i"]) is int
    assert params["f"] == 0.001
    assert params["s"] == "  keep me  "  # str is never stripped
    assert (params["b1"], params["b2"], params["b3"]) == (True, False, True)
    assert params["file"] == "meshes/wing.dat"
    assert params["TIME_LIMIT"] == 30 and params["NCPUS"] == 1
    assert [s.params["bools"] for s in states] == [True, False, False, True]
    assert [s.name for s in states] == ["bools=yes", "bools=No", "bools=0", "bools=true"]


def test_escapes_and_verbatim_values(fixture_bytes):
    states = parse_params(fixture_bytes("params/escapes.xml"))
    assert [s.params["cmd"] for s in states[::2]] == ["a;b", "c\\", "d\\x", "", "e & f"]
    assert [s.params["code"] for s in states[:2]] == ["x<1", "y>2"]
    # A single-state parameter is taken verbatim: no escapes, ';' is plain text.
    assert states[0].params["raw"] == "a\\;b;c\\\\"
    assert states[0].params["cr"] == "line\r\nend"
    assert states[0].name == "cmd=a;b,code=x<1"


def test_time_limit_absent_stays_absent(fixture_bytes):
    params = parse_params(fixture_bytes("params/spec_example.xml"))[0].params
    assert "TIME_LIMIT" not in params


def test_ncpus_defaults_to_one_in_every_state():
    data = b'<Para><Param name="x" type="int" multistate="1">1;2;3</Param></Para>'
    assert [s.params["NCPUS"] for s in parse_params(data)] == [1, 1, 1]


def test_ncpus_and_time_limit_default_types():
    data = b'<Para><Param name="NCPUS">4</Param><Param name="TIME_LIMIT">2.5</Param></Para>'
    assert parse_params(data)[0].params == {"NCPUS": 4, "TIME_LIMIT": 2.5}


def test_state_limit():
    data = (
        b'<Para states="product">'
        + b"".join(
            b'<Param name="p%d" multistate="1">1;2;3;4;5;6;7;8;9;10</Param>' % i for i in range(3)
        )
        + b"</Para>"
    )
    with pytest.raises(AdapterError) as info:
        parse_params(data, max_states=999)
    assert (
        str(info.value) == "para.xml: parameter file gives 1000 states, more than the limit of 999"
    )
    assert count_states(data) == 1000


def test_ten_thousand_product_states():
    values = ";".join(f"{i * 0.1:.1f}" for i in range(10))
    body = "".join(
        f'<Param name="p{i}" type="float" multistate="1">{values}</Param>' for i in range(4)
    )
    data = f'<Para states="product"><Param name="NCPUS" type="int">2</Param>{body}</Para>'.encode()
    states = parse_params(data)
    assert len(states) == 10_000
    assert states[-1].name == "p0=0.9,p1=0.9,p2=0.9,p3=0.9"
    assert states[1234].params == {"NCPUS": 2, "p0": 0.1, "p1": 0.2, "p2": 0.3, "p3": 0.4}


def test_ten_thousand_zip_states():
    xs = ";".join(str(i) for i in range(10_000))
    data = f'<Para><Param name="x" type="int" multistate="1">{xs}</Param></Para>'.encode()
    assert count_states(data) == 10_000
    states = parse_params(data)
    assert [s.params["x"] for s in states] == list(range(10_000))


@pytest.mark.parametrize(
    "text, values",
    [
        ("a;b", ["a", "b"]),
        ("a\\;b", ["a;b"]),
        ("a\\\\;b", ["a\\", "b"]),
        ("a\\x", ["a\\x"]),
        ("a\\", ["a\\"]),
        (";", ["", ""]),
        ("", [""]),
    ],
)
def test_split_values(text, values):
    assert split_values(text) == values


# --- property: any value survives the round trip -------------------------------------

# XML 1.0 can carry any character but these (and lone surrogates).
_NOT_XML = [chr(c) for c in range(0x20) if c not in (0x9, 0xA, 0xD)] + ["\ufffe", "\uffff"]
_CHARS = st.one_of(
    st.sampled_from(list(";\\\n\r\t '\"<>&{}$`|*?")),
    st.characters(blacklist_categories=("Cs",), blacklist_characters=_NOT_XML),
)
VALUES = st.text(_CHARS, max_size=30)


def xml_text(value: str) -> str:
    """The XML form of text: markup escaped, and CR as a character reference
    (XML parsers turn a literal CR into LF)."""
    return escape(value).replace("\r", "&#13;")


def para(params: list[tuple[str, str, bool]], states: str = "zip") -> bytes:
    body = "".join(
        f'<Param name="{name}" type="str" multistate="{int(multi)}">{xml_text(text)}</Param>\n'
        for name, text, multi in params
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Para states="{states}">\n{body}</Para>\n'.encode()


@settings(max_examples=200, deadline=None)
@given(values=st.lists(VALUES, min_size=1, max_size=6), single=VALUES)
def test_any_value_round_trips(values, single):
    text = join_values(values)
    assume(text.strip())  # an all-blank multistate value is refused by design
    states = parse_params(para([("v", text, True), ("s", single, False)]))
    assert [s.params["v"] for s in states] == values
    assert all(s.params["s"] == single for s in states)
    assert [s.name for s in states] == [f"v={v}" for v in values]


@settings(max_examples=100, deadline=None)
@given(a=st.lists(VALUES, min_size=1, max_size=4), b=st.lists(VALUES, min_size=1, max_size=4))
def test_product_of_any_values(a, b):
    ta, tb = join_values(a), join_values(b)
    assume(ta.strip() and tb.strip())
    states = parse_params(para([("a", ta, True), ("b", tb, True)], "product"))
    assert [(s.params["a"], s.params["b"]) for s in states] == [(x, y) for x in a for y in b]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(VALUES, max_size=8))
def test_split_inverts_join(values):
    assume(values)
    assert split_values(join_values(values)) == values


def test_resolved_bytes_counts_a_repeated_value_in_every_state():
    data = (
        b'<Para><Param name="note" type="str">abcd</Param>'
        b'<Param name="x" type="int" multistate="1">1;2;3</Param></Para>'
    )
    states = parse_params(data)
    assert states[0].params == {"note": "abcd", "x": 1, "NCPUS": 1}
    # Per state: "note" (4) + "abcd" (4), "x" (1) + a number (24), "NCPUS" (5) + a number.
    assert resolved_bytes(states) == 3 * (4 + 4 + 1 + 24 + 5 + 24)
