"""HTML → clean text for filings and press-release pages (lxml).

Why not ``text_content()``: it glues table cells and paragraphs together and
keeps the hidden iXBRL header (contexts, units, dei: facts) that every modern
8-K carries, which would poison sentence splitting downstream. We walk the tree
without recursion (so deeply nested HTML cannot blow the stack), drop
script/style/hidden content, end a line at every block element, separate table
cells with " | ", and put 8-K item headings on lines of their own so that later
stages can treat "Item 1.01" ... "Item 9.01" as section boundaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.etree
import lxml.html

from monitor.documents import normalise_text
from monitor.errors import ParseError

_DROP = {"script", "style", "noscript", "head", "template", "svg", "iframe", "object", "ix:header", "xbrli:context"}
_BLOCK = {
    "p", "div", "br", "tr", "li", "ul", "ol", "table", "section", "article", "header", "footer",
    "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "dd", "dt", "dl", "center",
    "address", "figure", "figcaption", "main", "aside", "nav", "form", "body", "html", "title",
}
_CELL = {"td", "th"}
_HIDDEN = re.compile(r"display\s*:\s*none", re.I)
_ITEM_HEADING = re.compile(r"^\s*item\s*(\d{1,2}\.\d{2})\b", re.I)
_WHITESPACE = re.compile(r"\s+")
_DECLARED_CHARSET = re.compile(rb"<meta[^>]+charset|<\?xml[^>]+encoding", re.I)
_READABLE = re.compile(r"[^\W\d_]{2,}")  # at least one word of two letters


@dataclass(frozen=True)
class HtmlText:
    text: str
    title: str
    items: tuple[str, ...]  # 8-K item codes found as headings, in order of appearance


def html_to_text(data: bytes | str, source: str = "html") -> HtmlText:
    """Parse an HTML/XHTML body and return its readable text, title and item codes."""
    root = parse_html(data, source)
    title = " ".join(normalise_text(root.findtext(".//title") or "").split())
    text = normalise_text(_walk(root))
    text, items = _mark_item_headings(text)
    if not _READABLE.search(text):
        raise ParseError(source, "HTML has no readable text (binary or empty body)")
    return HtmlText(text=text, title=title, items=items)


def parse_html(data: bytes | str, source: str = "html") -> lxml.html.HtmlElement:
    """The document tree of an HTML body, with its encoding guessed as a browser would.

    Hostile input is refused rather than half-read: an empty body, one lxml cannot parse, or one
    nested past the parser's limit (which libxml2 would silently truncate) is a ParseError.
    """
    if isinstance(data, str):  # lone surrogates (from a feed's &#xD800;) cannot be encoded: they become "?"
        data, encoding = data.encode("utf-8", errors="replace"), "utf-8"
    else:
        encoding = _encoding_of(data)
    if not data.strip():
        raise ParseError(source, "empty HTML body")
    parser = _parser(encoding)
    try:
        root = lxml.html.document_fromstring(data, parser=parser)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ParseError(source, f"unparseable HTML: {exc}") from exc
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        raise ParseError(source, "HTML nested deeper than the parser's limit (2048); refused rather than truncated")
    return root


def _encoding_of(data: bytes) -> str | None:
    """None when the document declares its charset (libxml2 honours it), else UTF-8 if valid, else cp1252.

    Without a declaration libxml2 assumes Latin-1, which turns every UTF-8 curly quote into mojibake.
    """
    if _DECLARED_CHARSET.search(data[:4096]):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _parser(encoding: str | None) -> lxml.html.HTMLParser:
    # huge_tree: real 10-Ks exceed libxml2's default limits; no_network: never fetch DTDs.
    return lxml.html.HTMLParser(remove_comments=True, remove_pis=True, huge_tree=True, no_network=True,
                                encoding=encoding)


def _walk(root: lxml.html.HtmlElement) -> str:
    pieces: list[str] = []
    skipping: lxml.etree._Element | None = None
    for event, element in lxml.etree.iterwalk(root, events=("start", "end")):
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if skipping is not None:
            if event == "end" and element is skipping:
                skipping = None
                if element.tail:
                    pieces.append(_inline(element.tail))
            continue
        if event == "start":
            if not tag or tag in _DROP or _HIDDEN.search(element.get("style", "")) or element.get("hidden") is not None:
                skipping = element
                continue
            if tag in _BLOCK:
                pieces.append("\n")
            if element.text:
                pieces.append(element.text if tag == "pre" else _inline(element.text))
        else:
            if tag in _BLOCK:
                pieces.append("\n")
            elif tag in _CELL:
                pieces.append(" | ")
            if element.tail:
                pieces.append(_inline(element.tail))
    return _tidy_cells("".join(pieces))


def _inline(text: str) -> str:
    """Whitespace inside running HTML text is a single space, newlines included."""
    return _WHITESPACE.sub(" ", text)


def _tidy_cells(text: str) -> str:
    """Drop the empty cells and the separators that dangle at line ends."""
    lines = []
    for line in text.split("\n"):
        cells = [cell.strip() for cell in line.split(" | ")]
        lines.append(" | ".join(cell for cell in cells if cell))
    return "\n".join(lines)


def _mark_item_headings(text: str) -> tuple[str, tuple[str, ...]]:
    lines = text.split("\n")
    items: list[str] = []
    out: list[str] = []
    for line in lines:
        match = _ITEM_HEADING.match(line)
        if match and len(line) < 300:
            if match.group(1) not in items:
                items.append(match.group(1))
            out.extend(["", line.replace(" | ", " "), ""])
        else:
            out.append(line)
    return normalise_text("\n".join(out)), tuple(items)


def body_to_text(data: bytes, content_type: str, source: str) -> HtmlText:
    """Text of any body a source may hand us: HTML/XHTML or plain text.

    The content type is a hint servers often get wrong (EDGAR serves .txt
    exhibits as text/plain, IR sites serve HTML as text/plain), so we also look
    at the first bytes.
    """
    head = data[:2048].lstrip().lower()
    looks_html = head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in head or b"<body" in head
    if "html" in content_type or looks_html:
        return html_to_text(data, source)
    if content_type and not content_type.startswith("text/") and content_type != "application/octet-stream":
        raise ParseError(source, f"unsupported content type {content_type!r}")
    text = normalise_text(decode_text(data))
    if not text:
        raise ParseError(source, "empty text body")
    return HtmlText(text=text, title="", items=())


def decode_text(data: bytes) -> str:
    """UTF-8 when valid, else Windows-1252 (what EDGAR's older text exhibits use)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
