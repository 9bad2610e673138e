"""parse_xml refuses DTDs, entities, oversize and malformed input, and fast."""

import time

import pytest
from lxml import etree

from adapters.errors import AdapterError, UnsafeXMLError
from adapters.safexml import parse_xml

DTD = "DOCTYPE declarations (DTDs) and entities are not allowed"


def refused(data: bytes, filename: str = "f.xml", **kw) -> str:
    start = time.perf_counter()
    with pytest.raises(UnsafeXMLError) as info:
        parse_xml(data, filename, **kw)
    # Refusal must not depend on parsing (or expanding) the hostile part.
    assert time.perf_counter() - start < 0.5
    assert isinstance(info.value, AdapterError)
    return str(info.value)


@pytest.mark.parametrize(
    "name, line",
    [
        ("xxe.xml", 2),
        ("xxe_network.xml", 2),
        ("parameter_entity.xml", 2),
        ("billion_laughs.xml", 2),
        ("comment_before_doctype.xml", 3),
    ],
)
def test_doctype_and_entities_are_refused(fixture_bytes, name, line):
    assert refused(fixture_bytes(f"xml/{name}")) == f"f.xml:{line}: {DTD}"


def test_xxe_never_reads_the_file(fixture_bytes):
    message = refused(fixture_bytes("xml/xxe.xml"))
    assert "root:" not in message


def test_undeclared_entity_reference_is_refused(fixture_bytes):
    message = refused(fixture_bytes("xml/undeclared_entity.xml"), "para.xml")
    assert message.startswith("para.xml:3: entity references are not allowed")
    assert "Entity 'nbsp' not defined" in message


def test_doctype_in_utf16_is_refused():
    data = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE a [<!ENTITY e "x">]>\n<a>&e;</a>'
    assert refused(data.encode("utf-16")) == f"f.xml:2: {DTD}"


def test_doctype_in_utf16_without_bom_is_refused():
    data = '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'
    assert refused(data.encode("utf-16-le")) == f"f.xml:1: {DTD}"


def test_oversize_is_refused_before_parsing():
    data = b"<a>" + b"x" * 2000 + b"</a>"
    assert refused(data, max_bytes=1000) == (
        f"f.xml: file is {len(data)} bytes, larger than the limit of 1000"
    )


def test_default_size_cap_is_one_megabyte():
    data = b"<a>" + b"x" * 1_000_000 + b"</a>"
    assert "larger than the limit of 1000000" in refused(data)


def test_malformed_xml_names_the_line(fixture_bytes):
    message = refused(fixture_bytes("xml/malformed.xml"), "para.xml")
    assert message.startswith("para.xml:4: malformed XML: Opening and ending tag mismatch")


def test_bare_ampersand_gets_a_hint(fixture_bytes):
    message = refused(fixture_bytes("xml/bare_ampersand.xml"))
    assert message.startswith("f.xml:2: malformed XML:")
    assert message.endswith("(write a literal & as &amp;)")


def test_empty_input_is_refused():
    assert refused(b"  \n") == "f.xml: file is empty"


def test_not_bytes_is_a_type_error():
    with pytest.raises(TypeError):
        parse_xml("<a/>", "f.xml")


def test_safe_document_parses(fixture_bytes):
    root = parse_xml(fixture_bytes("xml/safe.xml"), "safe.xml")
    assert root.tag == "Para"
    param = root.find("Param")
    assert param.text == "<a> & \"b\" 'c' ;\n<!DOCTYPE not really>"
    assert param.sourceline == 5


def test_huge_text_node_is_refused_by_libxml2():
    # huge_tree=False: libxml2 refuses single text nodes over 10 MB.
    data = b"<a>" + b"x" * 11_000_000 + b"</a>"
    with pytest.raises(UnsafeXMLError, match="malformed XML"):
        parse_xml(data, "f.xml", max_bytes=20_000_000)


def test_returns_an_lxml_element():
    assert isinstance(parse_xml(b"<a><b/></a>", "f.xml"), etree._Element)
