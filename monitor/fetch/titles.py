"""A document's title as a reader would name it: its headline, never its page furniture.

What a route hands us is often not a title: a filing's HTML ``<title>`` is a file name or
"Document"; its first visible line is the iXBRL header ("false 0001819989 …") or the cover
page ("SECURITIES AND EXCHANGE COMMISSION"); a wire page opens with a site's menu, a
sign-in box or the release's dateline paragraph. So the title is the first line that reads
as a headline, looked for only before the body starts (a dateline or an 8-K item heading);
then the headline the publisher put in the URL ("…/Core-Scientific-Announces-…"). A filing's
own form document (an 8-K, not its exhibits) has no headline but its item headings, so those
are its title ("8-K: Item 1.01 Entry into a Material Definitive Agreement; Item 2.03 …").

A feed item's own title is the publisher's headline and is always kept as given.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

MAX_TITLE = 200
HEAD_LINES = 25  # a headline sits above the body; the cover page of an 8-K takes ~20 lines

_WORD = re.compile(r"[^\W\d_]{2,}")
# The hidden iXBRL header rendered as text: booleans, CIKs, ISO dates and prefixed names.
_IXBRL = re.compile(r"^(true|false)\b|\b\d{10}\b|\b(us-gaap|dei|iso4217|xbrli|srt):\w", re.I)
_COVER = re.compile(
    r"^(united states|securities and exchange commission|washington,? d\.?c\.?|form\b|current report"
    r"|pursuant to|of the securities exchange act|date of report|\(exact name|commission file"
    r"|published on\b|\d{1,2}-k: |exhibit \d|certain (confidential )?(information|portions)|table of contents"
    r"|check the appropriate box|title of each class|\((state|commission|i\.?r\.?s\.?|address|registrant|former)\b"
    r"|press release\b(?!s? (?:announc|report)))",
    re.I)
_FURNITURE = re.compile(
    r"skip to|sign in|log ?in\b|join today|become a member|subscribe|newsletter|cookie|password|please try again"
    r"|we will not (release|sell|share)|by providing (my|your) e-?mail|privacy"
    r"|related questions|last update|page #\d|distributed by public|\{\{|^share\b|^menu\b|all rights reserved",
    re.I)
# Where the body starts: a wire dateline ("AUSTIN, Texas--(BUSINESS WIRE)--", "… 2025 (GLOBE NEWSWIRE) --",
# "/PRNewswire/") or an 8-K item heading.
_DATELINE = re.compile(r"\((globe ?newswire|business ?wire|accesswire|newsfile)\)|/\s*prnewswire\s*/|--\(", re.I)
_ITEM_HEADING = re.compile(r"^\s*item\s*\d{1,2}\.\d{2}\b", re.I)
_TABLE_CELL = re.compile(r"\s\|(\s|$)|^source:", re.I)  # a cell of a table ("To Our Shareholders | 3 |"), a credit line
_HANGING = re.compile(r"\b(?:of|and|the|to|for|in|with|a|an|at|on|by|from|its|as)$", re.I)  # a headline wrapped mid-phrase
_DOMAIN = re.compile(r"\b[\w-]+\.(com|net|org|io|ai)\b", re.I)
_SLUG_SPLIT = re.compile(r"[-_+]+")
_NOISE_TOKEN = re.compile(r"^(\d+|[0-9a-f]{6,}|html?|aspx?|php)$", re.I)
_SMALL_WORDS = frozenset("a an and as at by for from in of on or the to with".split())


def document_title(text: str, *, given: str = "", url: str = "", doc_type: str = "") -> str:
    """The best title for a document: ``given`` (a page's ``<title>``) if it reads as one; for a form's own
    document its item headings, else its form; else the text's headline, else the URL's, else the exhibit's
    type ("EX-99.1"), else ""."""
    given = _without_site_name(given)
    if reads_as_headline(given):
        return _clip(given)
    if _is_form_document(doc_type):
        headings = _item_headings(text)
        return _clip(f"{doc_type}: {'; '.join(headings)}") if headings else doc_type
    for candidate in (_headline(text), _slug_headline(url)):
        if candidate:
            return _clip(candidate)
    return doc_type if doc_type.upper().startswith("EX-") else ""  # an exhibit with no headline: what it is


def reads_as_headline(line: str) -> bool:
    """True for a line that could head a release: a few words, not a sentence of the body, not furniture."""
    line = line.strip()
    if not 15 <= len(line) <= 300 or len(_WORD.findall(line)) < 3:
        return False
    if line.endswith(".") and len(line) > 120:  # a paragraph of the body
        return False
    return not (_IXBRL.search(line) or _COVER.search(line) or _FURNITURE.search(line) or _DATELINE.search(line)
                or _ITEM_HEADING.search(line) or _TABLE_CELL.search(line)
                or (_DOMAIN.search(line) and len(line.split()) <= 4))


def _without_site_name(title: str) -> str:
    """A page title without the site's name around it ("… | Business Wire", "News | …")."""
    title = " ".join(title.split())
    for separator in (" | ", " - ", " – ", " — "):
        parts = title.split(separator)
        while len(parts) > 1 and len(parts[-1].split()) <= 3:
            parts.pop()
        while len(parts) > 1 and len(parts[0].split()) <= 2:
            parts.pop(0)
        title = separator.join(parts)
    return title


def _headline(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()][:HEAD_LINES]
    for i, line in enumerate(lines):
        if _DATELINE.search(line) or _ITEM_HEADING.search(line):
            return ""
        if reads_as_headline(line):
            if _HANGING.search(line) and i + 1 < len(lines) and not _DATELINE.search(lines[i + 1]):
                return f"{line} {lines[i + 1]}"  # "… Announces Upsize and Pricing of" / "$1.15 Billion …"
            return line
    return ""


def _slug_headline(url: str) -> str:
    """The headline a publisher wrote into the URL: the path segment with the most words."""
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        return ""
    best: list[str] = []
    for segment in path.split("/"):
        segment = re.sub(r"\.\w{2,5}$", "", segment)
        words = [w for w in _SLUG_SPLIT.split(segment) if w]
        while words and _NOISE_TOKEN.match(words[0]):
            words.pop(0)
        while words and _NOISE_TOKEN.match(words[-1]):
            words.pop()
        if len(words) > len(best):
            best = words
    if len(best) < 4:
        return ""
    return " ".join(w if w[:1].isupper() or (i and w in _SMALL_WORDS) else w.capitalize()
                    for i, w in enumerate(best))


def _is_form_document(doc_type: str) -> bool:
    """An SEC form's own document (8-K, 6-K, 10-Q …), as opposed to an exhibit or a press release."""
    return bool(doc_type) and doc_type.upper() not in ("PR", "") and not doc_type.upper().startswith("EX-")


def _item_headings(text: str) -> list[str]:
    """The form's "Item N.NN Title" lines, once each, without their trailing full stop."""
    headings: dict[str, str] = {}
    for line in text.splitlines():
        if match := _ITEM_HEADING.match(line):
            code = re.sub(r"\s+", " ", match.group(0).strip()).title()
            heading = " ".join(line.replace("|", " ").split()).rstrip(". ")
            headings.setdefault(code, re.sub(r"^(item\s*\d{1,2}\.\d{2})\.?", r"\1", heading, flags=re.I))
    return list(headings.values())


def _clip(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1].rstrip() + "…"
