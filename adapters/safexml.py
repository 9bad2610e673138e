"""Parse untrusted XML: no DTD, no entities, no network, a size cap."""

import codecs
import re

from lxml import etree

from adapters.errors import UnsafeXMLError

# Whatever may legally precede the root element besides a DOCTYPE:
# whitespace, the XML declaration or processing instructions, comments.
_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.S)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_NO_DTD = "DOCTYPE declarations (DTDs) and entities are not allowed"
_NO_ENTITIES = "entity references are not allowed (only &lt; &gt; &amp; &quot; &apos; and &#...;)"


def _text_view(data: bytes) -> str:
    """Decode just well enough to find markup: every ASCII-compatible encoding
    decodes its ASCII markup the same under latin-1, the UTF-16/32 ones need
    their BOM honoured (a UTF-16 file hides ``<!DOCTYPE`` from a byte search).
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, errors="replace")
    if data[:2] in (b"<\x00", b"\x00<"):
        return data.decode("utf-16-le" if data[0] == 0x3C else "utf-16-be", errors="replace")
    return data.decode("latin-1")


def _refuse_doctype(data: bytes, filename: str) -> None:
    """Refuse a DOCTYPE before lxml sees it: with no DTD there can be no entity
    declaration, and an entity that is not declared cannot expand."""
    text = _text_view(data)
    pos = 0
    while match := _PROLOG_ITEM.match(text, pos):
        pos = match.end()
    if text.startswith("<!", pos):
        raise UnsafeXMLError(filename, text.count("\n", 0, pos) + 1, _NO_DTD)


def _parser() -> etree.XMLParser:
    # A parser per call: lxml parsers keep per-document state and are not to be
    # shared between green threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_xml(data: bytes, filename: str, max_bytes: int = 1_000_000) -> etree._Element:
    """Parse ``data`` into its root element, refusing anything unsafe.

    Refused, each with an `UnsafeXMLError` naming ``filename``: input larger than
    ``max_bytes`` (checked before parsing), any DOCTYPE, any entity declaration
    or reference other than the five predefined ones and character references.
    Malformed XML raises `UnsafeXMLError` too, with the line of the fault.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse_xml wants bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise UnsafeXMLError(
            filename, None, f"file is {len(data)} bytes, larger than the limit of {max_bytes}"
        )
    if not data.strip():
        raise UnsafeXMLError(filename, None, "file is empty")
    _refuse_doctype(data, filename)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        message = exc.msg or str(exc)
        if "Entity" in message and "not defined" in message:
            # An undeclared entity reference: there is no DTD to declare it in.
            raise UnsafeXMLError(filename, line, f"{_NO_ENTITIES}: {message}") from exc
        if "EntityRef" in message:
            message += " (write a literal & as &amp;)"
        raise UnsafeXMLError(filename, line, f"malformed XML: {message}") from exc
    # Defence in depth: the prolog scan should make both impossible.
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXMLError(filename, 1, _NO_DTD)
    for node in root.iter(etree.Entity):
        raise UnsafeXMLError(filename, node.sourceline, _NO_ENTITIES)
    return root
