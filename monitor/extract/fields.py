"""Numbers that matter, normalised: "$3.5 billion" → 3.5e9, "1.1 GW" → 1100 MW, "15-year" → 15.

spaCy's small English model is weak on quantities, so units get rules of their
own. A figure that belongs to an earlier deal ("previously announced offering
size of $800 million") or to something else ("$25.91 per share") is skipped;
a redacted figure ("$[***]") is reported as withheld, never as a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.extract.model import WITHHELD
from monitor.extract.rules import Rules, any_match

_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
_MONEY = re.compile(
    r"(?:US\s?)?\$\s?" + _NUMBER + r"(?:\s?(billion|million|thousand|bn|mm|b|m|k)\b)?", re.IGNORECASE
)
_POWER = re.compile(
    _NUMBER + r"(?:\s(?:incremental|additional|net|gross))?\s?-?\s?(gigawatts?|megawatts?|gws?|mws?)(?!h)\b", re.IGNORECASE
)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30}
_TERM = re.compile(r"\b(\d{1,2}(?:\.\d)?|" + "|".join(_WORDS) + r")[\s-](year|month)s?\b(?!\s+(?:old|ago))",
                   re.IGNORECASE)
_NOT_TERM_AFTER = re.compile(r"^\W*(?:\w+\W+){0,1}(?:extension|renewal|option|anniversary|period)", re.IGNORECASE)
_WITHHELD = {
    "usd": re.compile(r"\$\s?\[\*+\]", re.IGNORECASE),
    "mw": re.compile(r"\[\*+\]\s?-?\s?(?:mw|megawatts?|gw)\b", re.IGNORECASE),
    "term_years": re.compile(r"\[\*+\][\s-](?:year|month)", re.IGNORECASE),
}


@dataclass(frozen=True)
class Figure:
    value: float
    start: int
    end: int


def _number(whole: str, fraction: str | None) -> float:
    return float(whole.replace(",", "") + ("." + fraction if fraction else ""))


def money(text: str, rules: Rules) -> list[Figure]:
    figures = []
    for match in _MONEY.finditer(text):
        scale = rules.scales.get((match.group(3) or "").lower(), 1.0)
        figures.append(Figure(_number(match.group(1), match.group(2)) * scale, match.start(), match.end()))
    return _current(figures, text, rules)


def megawatts(text: str, rules: Rules) -> list[Figure]:
    figures = []
    for match in _POWER.finditer(text):
        value = _number(match.group(1), match.group(2))
        if match.group(3).lower().startswith("g"):
            value *= 1000
        figures.append(Figure(value, match.start(), match.end()))
    return _current(figures, text, rules)


def term_years(text: str, rules: Rules) -> list[Figure]:
    figures = []
    for match in _TERM.finditer(text):
        if _NOT_TERM_AFTER.search(text[match.end(): match.end() + 30]):
            continue
        raw = match.group(1).lower()
        value = float(_WORDS.get(raw, 0) or raw)
        if match.group(2).lower() == "month":
            value = round(value / 12, 2)
        figures.append(Figure(value, match.start(), match.end()))
    return _current(figures, text, rules)


def withheld(text: str, field: str) -> bool:
    return bool(_WITHHELD[field].search(text))


def _current(figures: list[Figure], text: str, rules: Rules) -> list[Figure]:
    """Drop figures of earlier deals and figures that measure something else."""
    kept = []
    for figure in figures:
        before = text[max(0, figure.start - 70): figure.start]
        after = text[figure.end: figure.end + 40]
        if any_match(rules.stale, before) or any_match(rules.not_a_field, after):
            continue
        kept.append(figure)
    return kept


__all__ = ["Figure", "WITHHELD", "megawatts", "money", "term_years", "withheld"]
