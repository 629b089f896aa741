"""One sentence → its disclosures: type, binding vs soft, direction, fields.

Rules come from ``rules/`` (see monitor.extract.rules); this module only says
how they combine:

- a type is present when one of its strong cues matches, or enough different
  weak ones do, and none of its vetoes matches; a type yields to the types it
  is ``excluded_by`` (the MW of a signed lease are compute, not power);
- a negated commitment ("did not enter into", "terminated") is soft and negative;
- commitment is soft when a soft override matches ("If exercised, ..."), else
  binding when a binding cue matches (the GUIDE labels a mixed
  sentence by its binding part), soft when only soft cues match, else the
  type's default;
- direction takes the first direction, in the type's order, whose cues match;
  a table row of percentage changes gives the trend's sign; else the default
  for the commitment;
- fields are read only from the sentence, skipping figures of earlier deals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from monitor.extract import fields
from monitor.extract.model import TYPES, WITHHELD
from monitor.extract.rules import Rules, any_match

FIELDS_BY_TYPE = {
    "contracted_compute": ("counterparty", "mw", "usd", "term_years"),
    "power": ("counterparty", "mw", "usd", "term_years"),
    "partnership": ("counterparty", "usd"),
    "financing": ("counterparty", "usd"),
    "mining": ("usd",),
    "btc_exposure": ("usd",),
}
_PERCENT = re.compile(r"(?<![\w.])(-?)\s?\d+(?:\.\d+)?\s?%")
_CRITICAL_IT = re.compile(r"^\W*(?:of\s+)?(?:critical\s+)?IT\b|^\s*(?:of\s+)?critical", re.IGNORECASE)


@dataclass(frozen=True)
class Reading:
    """What a sentence discloses for one type (before offsets are attached)."""

    type: str
    commitment: str
    direction: str
    fields: dict[str, Any]


def read_sentence(sentence: str, rules: Rules) -> list[Reading]:
    """The sentence's readings; boilerplate is screened out by the Extractor beforehand."""
    found = [t for t in TYPES if _has_type(sentence, t, rules)]
    found = [t for t in found if not any(other in found for other in rules.types[t].excluded_by)]
    readings = []
    for type_ in found:
        commitment = _commitment(sentence, type_, rules)
        readings.append(
            Reading(type_, commitment, _direction(sentence, type_, commitment, rules), read_fields(sentence, type_, rules))
        )
    return readings


def _has_type(sentence: str, type_: str, rules: Rules) -> bool:
    rule = rules.types[type_]
    if any_match(rule.veto, sentence):
        return False
    if any_match(rule.strong, sentence):
        return True
    return bool(rule.weak) and sum(1 for pattern in rule.weak if pattern.search(sentence)) >= rule.min_weak


def _commitment(sentence: str, type_: str, rules: Rules) -> str:
    if any_match(rules.negation + rules.soft_override["all"] + rules.soft_override[type_], sentence):
        return "soft"
    if any_match(rules.binding["all"] + rules.binding[type_], sentence):
        return "binding"
    if any_match(rules.soft["all"] + rules.soft[type_], sentence):
        return "soft"
    return rules.default_commitment[type_]


def _direction(sentence: str, type_: str, commitment: str, rules: Rules) -> str:
    if any_match(rules.negation, sentence):
        return "negative"
    rule = rules.direction[type_]
    for direction, patterns in rule.cues:
        if any_match(patterns, sentence):
            return direction
    trend = _percent_trend(sentence)
    if trend:
        return trend
    return rule.default_binding if commitment == "binding" else rule.default_soft


def _percent_trend(sentence: str) -> str:
    """A flattened table row of changes ("-43% -68%"): all down, all up, or mixed."""
    signs = [match.group(1) == "-" for match in _PERCENT.finditer(sentence)]
    if len(signs) < 2:
        return ""
    if all(signs):
        return "negative"
    if not any(signs):
        return "positive"
    return "neutral"


def read_fields(sentence: str, type_: str, rules: Rules) -> dict[str, Any]:
    found: dict[str, Any] = {}
    wanted = FIELDS_BY_TYPE[type_]
    if "counterparty" in wanted and (name := counterparty(sentence, rules)):
        found["counterparty"] = name
    if "mw" in wanted:
        figures = fields.megawatts(sentence, rules)
        preferred = [f for f in figures if _CRITICAL_IT.search(sentence[f.end: f.end + 25])]
        if preferred or figures:
            found["mw"] = (preferred or figures)[0].value
        elif fields.withheld(sentence, "mw"):
            found["mw"] = WITHHELD
    if "usd" in wanted:
        figures = fields.money(sentence, rules)
        if figures:
            found["usd"] = figures[0].value
        elif fields.withheld(sentence, "usd"):
            found["usd"] = WITHHELD
    if "term_years" in wanted:
        figures = fields.term_years(sentence, rules)
        if figures:
            found["term_years"] = figures[0].value
        elif fields.withheld(sentence, "term_years"):
            found["term_years"] = WITHHELD
    return found


def counterparty(sentence: str, rules: Rules) -> str | None:
    """The first known counterparty named in the sentence, else one a pattern finds."""
    best: tuple[int, str] | None = None
    lowered = sentence.lower()
    for name in rules.counterparties:
        for match in re.finditer(r"\b" + re.escape(name.lower()) + r"\b", lowered):
            if best is None or match.start() < best[0]:
                best = (match.start(), sentence[match.start(): match.end()])
            break
    if best:
        return best[1]
    for pattern in rules.counterparty_patterns:
        for match in pattern.finditer(sentence):
            name = match.group("name").strip(" ,.;:")
            if name and name.lower() not in rules.not_counterparties:
                return name
    return None
