"""Manual ingest: documents an analyst received outside the watched sources.

They take the same path as fetched ones: the same body parser, the same
de-duplication (by content, so ingesting a release the feed already brought is
a no-op), and the later extract/score stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlite_utils

from monitor import store
from monitor.documents import Document, content_hash, provenance_url, strip_provenance
from monitor.fetch.html_text import body_to_text


@dataclass(frozen=True)
class IngestResult:
    path: str
    document_id: int | None  # None: the store already had this text
    chars: int


def ingest_file(
    db: sqlite_utils.Database,
    path: Path,
    ticker: str,
    *,
    url: str = "",
    published: str = "",
    form: str = "",
) -> IngestResult:
    raw = path.read_bytes()
    data = strip_provenance(raw)
    url = url or provenance_url(raw)
    content_type = "text/html" if path.suffix.lower() in (".htm", ".html", ".xhtml") else ""
    body = body_to_text(data, content_type, str(path))
    document = Document(
        source="manual",
        ext_id=content_hash(body.text),
        ticker=ticker.upper(),
        url=url or path.resolve().as_uri(),
        text=body.text,
        title=body.title or path.name,
        form=form,
        doc_type=form,
        items=body.items,
        published_at=published or date.today().isoformat(),
        via="ingest",
    )
    ids = store.save_documents(db, [document])
    return IngestResult(str(path), ids[0] if ids else None, len(body.text))
