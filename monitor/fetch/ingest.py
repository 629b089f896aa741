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
    max_bytes: int,
) -> IngestResult:
    raw = read_local_document(path, max_bytes)
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
