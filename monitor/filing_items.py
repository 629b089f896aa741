"""Which 8-K items make a filing matter more, and how a stored document is labelled by them.

An 8-K announces its subject through item codes (SEC's Form 8-K instructions). A
handful of them are the events a holder must not miss: a contract signed or ended,
new debt or its acceleration, an impairment, a delisting notice, an officer leaving.
The codes come from the submissions JSON, the filing index and the document's own
"Item 1.01" headings (``monitor.fetch``); this module only decides which are marked
and how a reader sees them, in ``monitor documents`` and in the alerts citing them.
Foreign private issuers (IREN among the watched) file 6-K and 20-F, which carry no
item codes: their documents are labelled by form alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlite_utils

MARKED_ITEMS: Mapping[str, str] = {
    "1.01": "material definitive agreement",
    "1.02": "termination of a material definitive agreement",
    "2.03": "direct financial obligation",
    "2.04": "triggering event accelerating an obligation",
    "2.06": "material impairment",
    "3.01": "delisting notice or listing-rule failure",
    "5.02": "officer or director departure or appointment",
}


def split_items(stored: str | Iterable[str] | None) -> tuple[str, ...]:
    """Item codes from the store's comma-joined column (or any iterable), blanks dropped."""
    values = stored.split(",") if isinstance(stored, str) else (stored or ())
    return tuple(code.strip() for code in values if code and code.strip())


def marked_items(items: str | Iterable[str] | None) -> tuple[str, ...]:
    """The items among ``items`` that are marked, in their filing order."""
    return tuple(code for code in split_items(items) if code in MARKED_ITEMS)


def filing_label(form: str, items: str | Iterable[str] | None) -> str:
    """``8-K Item 1.01`` (``Items 1.01, 5.02`` for several) for a filing with marked items, else ""."""
    marked = marked_items(items)
    if not marked:
        return ""
    return f"{form or '8-K'} Item{'s' if len(marked) > 1 else ''} {', '.join(marked)}"


def label_citations(db: sqlite_utils.Database, ticker: str,
                    cites: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The cites with ``filing`` added where the cited document carries marked items.

    Cites name their document by URL (every citation route keeps it), so one
    lookup of the company's stored documents labels them all, whichever stage
    (deal events, distress rules, pillar moves) built the cite.
    """
    cites = [dict(c) for c in cites]
    urls = sorted({str(c.get("url") or "") for c in cites} - {""})
    if not urls:
        return cites
    marks = "(" + ",".join("?" * len(urls)) + ")"
    labels = {
        row[0]: filing_label(row[1], row[2])
        for row in db.execute(f"select url, form, items from documents where ticker = ? and url in {marks} "
                              "and items != ''", [ticker, *urls]).fetchall()
    }
    for cite in cites:
        label = labels.get(str(cite.get("url") or ""))
        if label:
            cite["filing"] = label
    return cites
