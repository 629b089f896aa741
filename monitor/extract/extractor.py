"""The Extractor: rules loaded once, applied to any number of documents.

A document's text is split into sentences (spaCy), paragraphs of boilerplate
(safe-harbour language, cover pages) are skipped whole, and each remaining
sentence is read by the rules. The GUIDE allows at most one disclosure per type
per sentence; ``extract`` keeps every sentence's disclosures with offsets.
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path

from monitor.extract.classify import read_sentence
from monitor.extract.model import Disclosure
from monitor.extract.rules import Rules, any_match, load_rules
from monitor.extract.sentences import split_sentences

_PARAGRAPH_BREAK = re.compile(r"\n")  # html_to_text ends every block with a line break


class Extractor:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.version = rules.version  # changes whenever a rules file changes

    @classmethod
    def from_dir(cls, rules_dir: Path) -> "Extractor":
        return cls(load_rules(rules_dir))

    def extract(self, text: str) -> list[Disclosure]:
        """All disclosures of a document, in text order, each with its sentence offsets."""
        found = []
        breaks = [match.start() for match in _PARAGRAPH_BREAK.finditer(text)]
        skipped_paragraph: int | None = None
        for sentence in split_sentences(text):
            paragraph = bisect.bisect_left(breaks, sentence.start)  # index of the paragraph it is in
            if paragraph == skipped_paragraph:
                continue
            if any_match(self.rules.boilerplate, sentence.text):
                skipped_paragraph = paragraph  # the rest of a safe-harbour paragraph goes too
                continue
            for reading in read_sentence(sentence.text, self.rules):
                found.append(Disclosure(reading.type, reading.commitment, reading.direction, sentence.text,
                                        sentence.start, sentence.end, **reading.fields))
        return found

    def extract_passage(self, text: str) -> list[Disclosure]:
        """At most one disclosure per type for a short passage (the scorer's unit)."""
        first: dict[str, Disclosure] = {}
        for disclosure in self.extract(text):
            first.setdefault(disclosure.type, disclosure)
        return list(first.values())
