"""The document record that every route (EDGAR, press-release feeds, offline
replay, manual ingest) produces, so the store and later stages see one shape."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Document:
    """One stored text: a filing's primary document or exhibit, or a release."""

    source: str  # "edgar", "wire" or "manual": who published it
    ext_id: str  # accession:filename, feed GUID, or content hash for manual ingest
    ticker: str
    url: str
    text: str
    title: str = ""
    form: str = ""  # filing form (8-K, 10-Q...) or "PR" for press releases
    doc_type: str = ""  # document type within the filing (8-K, EX-99.1...)
    accession: str = ""
    cik: int | None = None
    items: tuple[str, ...] = ()
    published_at: str = ""  # ISO date or datetime as the source gave it
    via: str = ""  # the route it arrived by: latest-feed, submissions, rss, replay, ingest
    period: str = ""  # period of report, used to link amendments
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def doc_key(self) -> str:
        return f"{self.source}:{self.ext_id}"

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


def normalise_text(text: str) -> str:
    """NFC, no zero-width characters, single spaces, at most one blank line.

    Done once at the edge so that hashes, offsets and later sentence splitting
    agree whichever route a document took.
    """
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def content_hash(text: str) -> str:
    """Hash of the text with case and whitespace folded: same words, same hash."""
    folded = " ".join(text.lower().split())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


_PROVENANCE_KEYS = ("URL:", "Retrieved-from:", "Corpus-date:", "Note:")


def strip_provenance(data: bytes) -> bytes:
    """Drop the ``URL: ...`` header block that bundled text excerpts start with.

    The project's sample and fixture texts carry their provenance in a short
    header; it is not part of the published text, so it must not change the
    content hash (or the same release would be stored twice).
    """
    header, rest = _provenance_header(data)
    return rest if header else data


def provenance_url(data: bytes) -> str:
    """The ``URL:`` of a provenance header, or "" when there is none."""
    header, _ = _provenance_header(data)
    return next((line.removeprefix("URL:").strip() for line in header if line.startswith("URL:")), "")


def _provenance_header(data: bytes) -> tuple[list[str], bytes]:
    head, sep, rest = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("utf-8", errors="replace").splitlines()
    if sep and lines and all(line.startswith(_PROVENANCE_KEYS) for line in lines):
        return lines, rest
    return [], data
