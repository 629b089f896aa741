"""The disclosure record: what one sentence says that moves the thesis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TYPES = ("contracted_compute", "power", "partnership", "financing", "mining", "btc_exposure")
WITHHELD = "withheld"  # a value redacted as [***] in a Reg S-K 601(b)(10) exhibit


@dataclass(frozen=True)
class Disclosure:
    type: str
    commitment: str  # binding | soft
    direction: str  # positive | negative | neutral
    sentence: str
    start: int  # character offsets of the sentence in the document text
    end: int
    counterparty: str | None = None
    mw: float | str | None = None
    usd: float | str | None = None
    term_years: float | str | None = None

    def fields(self) -> dict[str, Any]:
        """The stated fields, withheld ones included (what the store keeps)."""
        return {
            name: value
            for name in ("counterparty", "mw", "usd", "term_years")
            if (value := getattr(self, name)) is not None
        }

    def to_guide(self) -> dict[str, Any]:
        """The GUIDE's schema: type, commitment, direction and the numeric fields as numbers.

        Withheld values are left out: a redaction is not a figure.
        """
        record: dict[str, Any] = {"type": self.type, "commitment": self.commitment, "direction": self.direction}
        for name, value in self.fields().items():
            if value != WITHHELD:
                record[name] = _plain_number(value)
        return record


def _plain_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
