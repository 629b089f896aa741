"""Offline replay: the bundled real payloads in ``data/samples/`` as a source.

Used when there is no network (or ``--offline``). Each payload is read from
disk and goes through the same body parser as a fetched one, becomes the same
Document (same keys, so a later live fetch of the same filing is a duplicate),
and enters the same store → extract → score path.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
from pydantic import BaseModel, ConfigDict, ValidationError

from monitor import store
from monitor.documents import Document, strip_provenance
from monitor.errors import ConfigError, MonitorError, ParseError
from monitor.fetch.html_text import body_to_text
from monitor.fetch.titles import document_title
from monitor.fetch.result import PollResult

REPLAY_SOURCE = "replay"


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    ticker: str
    source: str
    form: str
    doc_type: str
    published: str
    url: str
    accession: str = ""
    ext_id: str = ""
    note: str = ""


def load_manifest(samples_dir: Path) -> list[Sample]:
    path = samples_dir / "manifest.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return [Sample.model_validate(entry) for entry in raw.get("document", [])]
    except FileNotFoundError:
        raise ConfigError(f"{path}: replay manifest not found") from None
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid replay manifest: {exc}") from exc


def sample_document(samples_dir: Path, sample: Sample) -> Document:
    """Parse one bundled payload exactly as the live route would parse its body."""
    path = samples_dir / sample.file
    data = strip_provenance(path.read_bytes())
    content_type = "text/html" if path.suffix.lower() in (".htm", ".html") else "text/plain"
    body = body_to_text(data, content_type, str(path))
    return Document(
        source=sample.source,
        ext_id=sample.ext_id or sample.url,
        ticker=sample.ticker.upper(),
        url=sample.url,
        text=body.text,
        title=document_title(body.text, given=body.title, url=sample.url, doc_type=sample.doc_type),
        form=sample.form,
        doc_type=sample.doc_type,
        accession=sample.accession,
        items=body.items,
        published_at=sample.published,
        via=REPLAY_SOURCE,
    )


@dataclass
class ReplayPlan:
    samples_dir: Path
    tickers: set[str]


def replay_samples(db: sqlite_utils.Database, plan: ReplayPlan) -> PollResult:
    """Store every bundled payload of a watched company; already stored ones are skipped."""
    result = PollResult(REPLAY_SOURCE)
    for sample in load_manifest(plan.samples_dir):
        if sample.ticker.upper() not in plan.tickers:
            continue
        result.filings_seen += 1
        try:
            document = sample_document(plan.samples_dir, sample)
        except (MonitorError, OSError) as exc:
            cause = exc.cause if isinstance(exc, ParseError) else str(exc)
            store.record_error(db, REPLAY_SOURCE, sample.file, type(exc).__name__, cause)
            result.errors.append(f"{sample.file}: {cause}")
            continue
        result.documents_added += len(store.save_documents(db, [document]))
    store.record_poll(db, REPLAY_SOURCE, ok=not result.errors, added=result.documents_added,
                      error="; ".join(result.errors[:3]))
    return result
