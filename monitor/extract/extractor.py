"""The Extractor: rules and the trained reader loaded once, applied to any number of documents.

A document's text is split into sentences (spaCy), paragraphs of boilerplate (safe-harbour
language, cover pages) are skipped whole, and the remaining sentences are read in one batch by the
trained reader (type, commitment, direction; monitor.extract.reader) with the precise parsers
reading each disclosure's fields (monitor.extract.classify.read_fields). The GUIDE allows at most one
disclosure per type per sentence; ``extract`` keeps every sentence's disclosures with offsets.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from monitor.extract.classify import read_fields
from monitor.extract.model import Disclosure
from monitor.extract.reader import CueFeatures, ReaderModel, file_hash, load_model
from monitor.extract.rules import Rules, any_match, load_rules
from monitor.extract.sentences import Sentence, split_sentences

_PARAGRAPH_BREAK = re.compile(r"\n")  # html_to_text ends every block with a line break


class Extractor:
    def __init__(self, rules: Rules, model: ReaderModel, model_hash: str) -> None:
        self.rules = rules
        self.model = model
        self.cues = CueFeatures(rules)
        self.cues.check(model)
        # changes whenever a rules file or the model changes, so either re-extracts every document
        self.version = hashlib.sha256(f"{rules.version}:{model_hash}".encode()).hexdigest()[:16]

    @classmethod
    def from_paths(cls, rules_dir: Path, model_path: Path) -> "Extractor":
        model, model_hash = cached_model(model_path)
        return cls(load_rules(rules_dir), model, model_hash)

    def extract(self, text: str) -> list[Disclosure]:
        """All disclosures of a document, in text order, each with its sentence offsets."""
        sentences = list(self._read_sentences(text))
        found = []
        for sentence, readings in zip(sentences, self.model.read([s.text for s in sentences], self.cues)):
            for reading in readings:
                found.append(Disclosure(reading.type, reading.commitment, reading.direction, sentence.text,
                                        sentence.start, sentence.end,
                                        **read_fields(sentence.text, reading.type, self.rules)))
        return found

    def extract_passage(self, text: str) -> list[Disclosure]:
        """At most one disclosure per type for a short passage (the scorer's unit)."""
        first: dict[str, Disclosure] = {}
        for disclosure in self.extract(text):
            first.setdefault(disclosure.type, disclosure)
        return list(first.values())

    def _read_sentences(self, text: str) -> Iterator[Sentence]:
        """The sentences worth reading: not in a boilerplate paragraph."""
        breaks = [match.start() for match in _PARAGRAPH_BREAK.finditer(text)]
        skipped_paragraph: int | None = None
        for sentence in split_sentences(text):
            paragraph = bisect.bisect_left(breaks, sentence.start)  # index of the paragraph it is in
            if paragraph == skipped_paragraph:
                continue
            if any_match(self.rules.boilerplate, sentence.text):
                skipped_paragraph = paragraph  # the rest of a safe-harbour paragraph goes too
                continue
            yield sentence


def cached_model(path: Path) -> tuple[ReaderModel, str]:
    """The model at ``path``, loaded once per process for each version of the file."""
    stat = path.stat() if path.exists() else None
    return _load(path.resolve(), stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0)


@lru_cache(maxsize=2)
def _load(path: Path, mtime_ns: int, size: int) -> tuple[ReaderModel, str]:
    return load_model(path), file_hash(path)

