"""Theses as data: ``rules/theses/*.toml`` → validated Thesis objects.

A thesis names its companies and pillars; each pillar says which disclosures
count (type, commitment, direction, points, per-MW and per-$bn weights, sign),
which market terms it reads, how fast evidence fades, and when a change is
worth an alert. Watching a peer or holding another thesis is a file edit.
A broken file is a ConfigError naming the file, the line (for TOML syntax) or
the key, and the problem.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from monitor.errors import ConfigError
from monitor.extract.model import TYPES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvidenceRule(_Strict):
    types: list[str]
    commitment: Literal["binding", "soft", "any"] = "any"
    directions: list[Literal["positive", "negative", "neutral"]] = ["positive", "negative", "neutral"]
    points: float = Field(gt=0)
    per_mw: float = Field(0.0, ge=0)
    per_usd_billion: float = Field(0.0, ge=0)
    sign: Literal[1, -1] = 1

    @model_validator(mode="after")
    def _known_types(self) -> "EvidenceRule":
        unknown = sorted(set(self.types) - set(TYPES))
        if unknown:
            raise ValueError(f"unknown disclosure types {unknown}; known: {list(TYPES)}")
        return self


class MarketTerm(_Strict):
    series: str
    measure: Literal["drawdown", "level", "change"]
    window_days: int = Field(gt=0)
    scale: float = 1.0


QUANTITIES = ("contracted_mw", "contract_usd", "annual_contracted_usd", "soft_pipeline_mw", "ai_power_mw",
              "backstop_usd", "proposals", "partnerships", "financing_raised_usd", "ai_mix")


class QuantityTerm(_Strict):
    """Points from a ledger quantity (monitor.ledger.units): ``per_unit`` per MW, dollar or count, or
    ``per_billion`` per $bn. No decay: a contract in force counts in full until it ends."""

    quantity: Literal[QUANTITIES]  # type: ignore[valid-type]
    per_unit: float = Field(0.0, ge=0)
    per_billion: float = Field(0.0, ge=0)


class UnitLevel(_Strict):
    """A threshold in the analyst's units: "contracted MW crosses 100", "AI mix crosses 25%"."""

    quantity: Literal[QUANTITIES]  # type: ignore[valid-type]
    thresholds: list[float]
    hysteresis: float = Field(0.0, ge=0)  # how far below a threshold the quantity must fall to alert again


class Pillar(_Strict):
    id: str
    name: str
    kind: Literal["backing", "optionality", "risk"]
    weight: float = Field(0.0, ge=0)
    half_life_days: float = Field(365.0, gt=0)
    saturation: float = Field(50.0, ge=0)
    alert_step: float = Field(15.0, gt=0)
    alert_thresholds: list[float] = []
    alert_hysteresis: float = Field(5.0, ge=0)  # how far below a threshold a value must fall to alert again
    evidence: list[EvidenceRule] = []
    market: list[MarketTerm] = []
    quantities: list[QuantityTerm] = []
    inverse_of: str | None = None


class AlertSettings(_Strict):
    lapse_days: int = Field(180, gt=0)
    market_step_days: int = Field(7, gt=0)
    new_deal_mw: float = Field(50.0, ge=0)  # a signed or expanded compute deal pages high from this many MW
    new_deal_usd: float = Field(500e6, ge=0)  # … or from this contract value (its increment when it grows)
    stale_market_days: int = Field(14, gt=0)  # market data older than this reads "no data since DATE"
    levels: list[UnitLevel] = []


class Thesis(_Strict):
    id: str
    name: str
    statement: str = ""
    companies: list[str]
    alerts: AlertSettings = AlertSettings()
    pillars: list[Pillar]
    source: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> "Thesis":
        ids = [p.id for p in self.pillars]
        if len(ids) != len(set(ids)):
            raise ValueError(f"pillar ids must be unique: {ids}")
        for pillar in self.pillars:
            if pillar.inverse_of and pillar.inverse_of not in ids:
                raise ValueError(f"pillar {pillar.id}: inverse_of {pillar.inverse_of!r} is not a pillar")
        if not any(p.kind == "backing" and p.weight > 0 for p in self.pillars):
            raise ValueError("at least one backing pillar needs a weight > 0")
        return self

    def pillar(self, pillar_id: str) -> Pillar:
        return next(p for p in self.pillars if p.id == pillar_id)


def load_thesis(path: Path) -> Thesis:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc  # message carries line and column
    except RecursionError:  # tomllib recurses per nesting level
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    try:
        thesis = Thesis.model_validate({**raw, "source": str(path)})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    return thesis.model_copy(update={"companies": [c.upper() for c in thesis.companies]})


def load_theses(theses_dir: Path) -> list[Thesis]:
    """Every ``*.toml`` in the folder; ids must be unique across files."""
    if not theses_dir.is_dir():
        raise ConfigError(f"{theses_dir}: theses folder not found")
    theses = [load_thesis(path) for path in sorted(theses_dir.glob("*.toml"))]
    seen: dict[str, str] = {}
    for thesis in theses:
        if thesis.id in seen:
            raise ConfigError(f"{thesis.source}: id: {thesis.id!r} is also the id of {seen[thesis.id]}")
        seen[thesis.id] = thesis.source
    if not theses:
        raise ConfigError(f"{theses_dir}: no thesis files (*.toml)")
    return theses
