"""feedparser behind a hardened edge: entity declarations refused, its own failures made ParseErrors.

Why refuse entities: feedparser strips nested entity declarations but keeps
"safe" ones with a literal value, and both its strict (expat) and loose parsers
expand them: one 1 MB entity referenced 10,000 times costs gigabytes, bounded
only by expat's 100x amplification limit. Real feeds declare at most character
references (``<!ENTITY nbsp "&#160;">``) or a short literal (``<!ENTITY copy "©">``), so
any other entity in the prolog (long text, nested references, external files) is refused; text in the document body never declares entities, so an article
quoting a DTD inside CDATA is not refused.

Why catch everything feedparser raises: it is a third-party parser fed hostile
bytes, and it has bugs on them (``&#xD800;`` raises UnicodeEncodeError in its
loose parser); a poll must record "source: cause", not die on a traceback.
"""

from __future__ import annotations

import re
from typing import Any

import feedparser

from monitor.errors import ParseError

_FIRST_ELEMENT = re.compile(rb"<\w")
_ENTITY = re.compile(rb"<!ENTITY\s+(?P<parameter>%\s+)?(?P<name>[^\s>]+)\s+(?P<value>\"[^\"]*\"|'[^']*'|[^\s>]+)")
_CHAR_REF = re.compile(rb"[\"']&#\w+;[\"']")
MAX_LITERAL_ENTITY = 16  # bytes; feed generators declare "©" or "–", never paragraphs


def parse_xml_feed(data: bytes, source: str) -> feedparser.FeedParserDict:
    """feedparser's result for ``data``; refused entities and feedparser's crashes are ParseErrors."""
    refuse_entity_declarations(data, source)
    try:
        return feedparser.parse(data)
    except Exception as exc:  # any failure of the third-party parser on these bytes is a bad payload
        raise ParseError(source, f"feed parser failed: {type(exc).__name__}: {exc}") from exc


def refuse_entity_declarations(data: bytes, source: str) -> None:
    """Raise ParseError when the prolog declares an entity that is not a single character reference."""
    if b"\x00" in data[:4]:  # UTF-16/32: the markup is ASCII with NULs between, which is enough to look at
        data = data.replace(b"\x00", b"")
    first = _FIRST_ELEMENT.search(data)
    prolog = data[: first.start()] if first else data
    for match in _ENTITY.finditer(prolog):
        if match["parameter"] or not (_CHAR_REF.fullmatch(match["value"]) or _short_text(match["value"])):
            name = match["name"].decode("ascii", "replace")
            raise ParseError(source, f"XML declares entity {name!r} with a text or external value; "
                                     "entity expansion is refused")


def _short_text(value: bytes) -> bool:
    """A quoted literal such as ``"©"``: no references or markup, so it can grow a feed at most a few times."""
    inner = value[1:-1]
    return value[:1] in (b'"', b"'") and len(inner) <= MAX_LITERAL_ENTITY and not any(c in inner for c in b"&<%")


def entry_text(entry: Any, key: str) -> str:
    """``entry[key]`` as text, "" when missing: hostile markup leaves keys like ``link`` set to None."""
    value = entry.get(key)
    return value if isinstance(value, str) else ""
