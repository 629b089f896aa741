"""Split one corpus document into candidate sentences to label, as the extractor would see them.

Run: .venv/bin/python scripts/corpus_candidates.py corpus/new/GROUP/texts/TICKER_YYYY-MM-DD_slug.txt

The text file starts with a ``URL: …`` line (and optionally ``Retrieved-from: …``), a blank line, then
the document verbatim. Prints one JSON line per sentence, in the corpus schema without
``disclosures``: ``{"id", "ticker", "date", "source_url", "doc", "group", "text"}``. Ticker, date and
slug come from the file name; the group from the folder above ``texts/``. Sentences are split by
``monitor.extract.sentences`` so that labelled units are the units the reader is given.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.documents import normalise_text  # noqa: E402
from monitor.extract.sentences import split_sentences  # noqa: E402


def candidates(path: Path) -> list[dict]:
    ticker, date, slug = path.stem.split("_", 2)
    raw = path.read_text(encoding="utf-8")
    header, _, body = raw.partition("\n\n")
    url = next(line[4:].strip() for line in header.splitlines() if line.startswith("URL:"))
    group = path.parent.parent.name
    records = []
    for number, sentence in enumerate(split_sentences(normalise_text(body)), 1):
        records.append({
            "id": f"{ticker.lower()}_{date}_{slug}-{number:02d}",
            "ticker": ticker.upper(), "date": date, "source_url": url, "doc": path.name,
            "group": group, "text": sentence.text,
        })
    return records


def main() -> None:
    for name in sys.argv[1:]:
        for record in candidates(Path(name)):
            print(json.dumps(record, ensure_ascii=False))


if __name__ == "__main__":
    main()
