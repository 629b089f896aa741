"""The labelled corpus the reader is trained on: every source merged, corrections applied, one hash.

Layout (``corpus/`` at the repository root; see its README):

- ``shared/train/all.jsonl`` — the shared training groups g1…g10, verbatim;
- ``shared/dev.jsonl`` — the shared dev set (group ``dev``); ``shared/dev_sources.json`` gives the URL of
  the three EDGAR excerpts whose dev records carry none;
- ``new/<group>/labels.jsonl`` — sentences labelled for this project, with ``texts/`` beside them;
- ``corrections.jsonl`` — label fixes found later, each ``{"id", "disclosures", "reason"}``: a logged
  correction, never a silent edit of a source file.

Every record comes out with its provenance (``ticker``, ``date``, ``source_url``, ``group``) and a
``document`` key (its source URL), because evaluation holds out whole companies and documents.
The corpus hash covers every file that feeds training, so a shipped model can say which corpus it
was trained on and a test can tell when the two have drifted apart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError
from monitor.extract.model import TYPES

COMMITMENTS = ("binding", "soft")
DIRECTIONS = ("positive", "negative", "neutral")
_REQUIRED = ("id", "ticker", "source_url", "text", "disclosures")


@dataclass(frozen=True)
class Example:
    """One labelled sentence with where it came from."""

    id: str
    text: str
    ticker: str
    date: str
    source_url: str
    group: str
    disclosures: tuple[dict[str, Any], ...]

    def by_type(self) -> dict[str, dict[str, Any]]:
        return {d["type"]: d for d in self.disclosures}

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "ticker": self.ticker, "date": self.date, "source_url": self.source_url,
                "group": self.group, "text": self.text, "disclosures": list(self.disclosures)}


def source_files(root: Path) -> list[Path]:
    """The files that make up the corpus, in a fixed order (the hash depends on it)."""
    files = [root / "shared" / "train" / "all.jsonl", root / "shared" / "dev.jsonl", root / "shared" / "dev_sources.json"]
    files += sorted((root / "new").glob("*/labels.jsonl"))
    files.append(root / "corrections.jsonl")
    return [path for path in files if path.exists()]


def corpus_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load_corpus(root: Path) -> list[Example]:
    """Every labelled sentence, corrections applied, ids unique across sources."""
    corrections = _corrections(root / "corrections.jsonl")
    urls = _document_urls(root / "shared" / "dev_sources.json")
    examples: dict[str, Example] = {}
    for path in source_files(root):
        if path.suffix != ".jsonl" or path.name == "corrections.jsonl":
            continue
        default_group = "dev" if path.name == "dev.jsonl" else path.parent.name
        for number, record in _records(path):
            where = f"{path}:{number}"
            if not record.get("source_url") and isinstance(record.get("id"), str):
                record["source_url"] = urls.get(record["id"].rsplit("-", 1)[0], "")
            example = _example(record, default_group, where)
            if example.id in examples:
                raise ConfigError(f"{where}: id {example.id!r} is already in the corpus")
            if example.id in corrections:
                example = _corrected(example, corrections.pop(example.id), where)
            examples[example.id] = example
    if corrections:
        raise ConfigError(f"corrections name ids not in the corpus: {sorted(corrections)[:5]}")
    return list(examples.values())


def _records(path: Path):
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as error:
                    raise ConfigError(f"{path}:{number}: not JSON: {error}") from None


def _example(record: dict[str, Any], default_group: str, where: str) -> Example:
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise ConfigError(f"{where}: record lacks {', '.join(missing)}")
    return Example(
        id=str(record["id"]), text=str(record["text"]), ticker=str(record["ticker"]).upper(),
        date=str(record.get("date", "")), source_url=str(record["source_url"]),
        group=str(record.get("group") or default_group),
        disclosures=_checked_disclosures(record["disclosures"], where),
    )


def _checked_disclosures(disclosures: Any, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(disclosures, list):
        raise ConfigError(f"{where}: disclosures is not a list")
    seen = set()
    for disclosure in disclosures:
        type_ = disclosure.get("type") if isinstance(disclosure, dict) else None
        if type_ not in TYPES or type_ in seen:
            raise ConfigError(f"{where}: bad or repeated disclosure type {type_!r}")
        if disclosure.get("commitment") not in COMMITMENTS or disclosure.get("direction") not in DIRECTIONS:
            raise ConfigError(f"{where}: {type_} needs a commitment of {COMMITMENTS} and a direction of {DIRECTIONS}")
        seen.add(type_)
    return tuple(disclosures)


def _document_urls(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return {key: url for key, url in json.loads(path.read_text(encoding="utf-8")).items() if not key.startswith("_")}


def _corrections(path: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return found
    for number, record in _records(path):
        if not record.get("reason") or "id" not in record or "disclosures" not in record:
            raise ConfigError(f"{path}:{number}: a correction needs an id, the disclosures and a reason")
        found[str(record["id"])] = record
    return found


def _corrected(example: Example, correction: dict[str, Any], where: str) -> Example:
    return Example(example.id, example.text, example.ticker, example.date, example.source_url, example.group,
                   _checked_disclosures(correction["disclosures"], where))
