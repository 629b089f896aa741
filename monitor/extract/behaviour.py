"""Behaviour suites: hand-written minimal pairs that say what the reader must do with a kind of wording.

Why beside the corpus figures: an F1 averages everything, while an analyst needs to know that
"non-binding", "terminated" or "proposed offering" are read right every time. Each suite is a JSON
Lines file (``tests/fixtures/behaviour/*.jsonl``) of ``{"text", "expect", "absent", "note"}``: the
disclosures that must be found (type, and commitment/direction when the case tests them) and the types
that must not be. The suites are never trained on; the tests floor their pass rates and
bench/accuracy.py prints them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from monitor.extract.model import Disclosure

class PassageReader(Protocol):
    def extract_passage(self, text: str) -> list[Disclosure]: ...


@dataclass(frozen=True)
class Suite:
    name: str
    cases: tuple[dict[str, Any], ...]


@dataclass
class Outcome:
    total: int = 0
    passed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 1.0


def load_suites(directory: Path) -> list[Suite]:
    suites = []
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            cases = tuple(json.loads(line) for line in handle if line.strip())
        suites.append(Suite(path.stem, cases))
    return suites


def case_failure(case: dict[str, Any], found: list[Disclosure]) -> str:
    """Why the reading of a case is wrong, or "" when it is right."""
    by_type = {d.type: d for d in found}
    for expected in case.get("expect", []):
        got = by_type.get(expected["type"])
        if got is None:
            return f"missed {expected['type']}"
        for key in ("commitment", "direction"):
            if key in expected and getattr(got, key) != expected[key]:
                return f"{expected['type']} {key} {getattr(got, key)}, expected {expected[key]}"
    spurious = [t for t in case.get("absent", []) if t in by_type]
    if not case.get("expect") and not case.get("absent"):
        spurious = list(by_type)  # an empty expectation: nothing at all may be found
    return f"found {', '.join(spurious)}" if spurious else ""


def run_suite(reader: PassageReader, suite: Suite) -> Outcome:
    outcome = Outcome()
    for case in suite.cases:
        outcome.total += 1
        found = reader.extract_passage(case["text"])
        problem = case_failure(case, found)
        if problem:
            outcome.failures.append({"text": case["text"], "problem": problem})
        else:
            outcome.passed += 1
    return outcome
