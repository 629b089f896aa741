"""Manual ingest: documents an analyst received outside the watched sources.

They take the same path as fetched ones: the same body parser, the same
de-duplication (by content, so ingesting a release the feed already brought is
a no-op), and the later extract/score stages. A file is read as a body from
the network is: at most ``http.max_body_bytes``, and only a regular file of
text or HTML (``/dev/zero`` would never end, random bytes would be stored as
megabytes of garbage text).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlite_utils

from monitor import store
from monitor.documents import Document, content_hash, provenance_url, strip_provenance
from monitor.errors import ParseError
from monitor.fetch.html_text import body_to_text
from monitor.fetch.titles import document_title


@dataclass(frozen=True)
class IngestResult:
    path: str
    document_id: int | None  # None: the store already had this text
    chars: int
    existing: str = ""  # when already stored: which document, under which company


def publication_date(value: str) -> str:
    """``--published`` as an ISO date, or a ParseError saying what is expected (never kept verbatim)."""
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ParseError("--published", f"{value!r} is not a date: give it as YYYY-MM-DD") from None


def ingest_file(
    db: sqlite_utils.Database,
    path: Path,
    ticker: str,
    *,
    url: str = "",
    published: str = "",
    form: str = "",
    max_bytes: int,
) -> IngestResult:
    published = publication_date(published) if published else ""
    raw = read_local_document(path, max_bytes)
    data = strip_provenance(raw)
    url = url or provenance_url(raw)
    content_type = "text/html" if path.suffix.lower() in (".htm", ".html", ".xhtml") else ""
    body = body_to_text(data, content_type, str(path))
    document = Document(
        source="manual",
        ext_id=f"{ticker.upper()}:{content_hash(body.text)}",  # one release about two companies is stored for each
        ticker=ticker.upper(),
        url=url or path.resolve().as_uri(),
        text=body.text,
        title=document_title(body.text, given=body.title, url=path.name) or path.name,
        form=form,
        doc_type=form,
        items=body.items,
        published_at=published,  # none given: the store dates it by its fetch time, flagged as guessed
        via="ingest",
    )
    ids = store.save_documents(db, [document])
    if ids:
        return IngestResult(str(path), ids[0], len(body.text))
    found = db.execute("select id, ticker from documents where content_hash = ? order by id limit 1",
                       [document.content_hash]).fetchone()
    existing = f"document {found[0]} of {found[1]}" if found else "a document stored before"
    return IngestResult(str(path), None, len(body.text), existing)


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13))
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)


def looks_binary(data: bytes) -> bool:
    """NUL bytes, or more than 2% C0 control characters in the first 64 KiB: not a text or HTML document."""
    sample = data[:65536]
    if b"\x00" in sample:
        return True
    controls = len(sample.translate(None, _NOT_CONTROL))
    return controls > 0.02 * len(sample)


def read_local_document(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular text or HTML file of at most ``max_bytes``; ParseError naming the file otherwise.

    The size is checked before reading and the read is capped too (a file may grow meanwhile); a
    device, FIFO or directory is refused before it is opened for reading, since it may never end.
    """
    source = str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ParseError(source, "not a regular file (a device, pipe or folder); give a text or HTML file")
        if info.st_size > max_bytes:
            raise ParseError(source, f"{info.st_size:,} bytes is more than the {max_bytes:,}-byte limit "
                                     "(http.max_body_bytes)")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ParseError(source, f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise ParseError(source, f"more than the {max_bytes:,}-byte limit (http.max_body_bytes)")
    if looks_binary(data):
        raise ParseError(source, "binary data, not a text or HTML document")
    return data
