"""The scorecard in the analyst's units, as of a date: MW, dollars, dollars a year — from the ledger.

Contracted figures count deals in force (signed, not terminated, within their term): a contract does
not fade with age, it ends. Soft pipeline (proposals, options, ROFOs) is shown apart and never added
to contracted capacity. Power counts for AI/HPC only when its deal reads so; mining sites, demand-
response credits and mining plants' outages are power for mining or unspecified.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Callable

from monitor.ledger.build import Deal, Ledger

COMPUTE = "compute"


@dataclass(frozen=True)
class TenantLine:
    tenant: str
    mw: float
    usd: float
    annual_usd: float
    deals: int


@dataclass(frozen=True)
class Quantities:
    ticker: str
    as_of: date
    contracted_mw: float = 0.0
    contract_usd: float = 0.0
    annual_contracted_usd: float = 0.0  # derived: value ÷ term per deal
    tenants: tuple[TenantLine, ...] = ()
    soft_pipeline_mw: float = 0.0
    ai_power_mw: float = 0.0
    other_power_mw: float = 0.0  # mining or unspecified: never AI power
    backstop_usd: float = 0.0
    proposals: int = 0
    lapsed: int = 0
    financing_raised_usd: float = 0.0  # signed financings in the 365 days to as_of
    partnerships: float = 0.0  # partnership deals in force (JVs, stakes, warrants)
    trailing_mining_usd: float | None = None  # trailing twelve months' mining revenue, when on file
    ai_mix: float | None = None  # annual contracted AI/HPC revenue ÷ (that + trailing mining revenue)
    parts: dict[str, list[tuple[float, dict[str, str]]]] = field(default_factory=dict)  # per deal: share, cite

    def cites(self, name: str) -> list[dict[str, str]]:
        return [cite for _, cite in self.parts.get(name, []) if cite]

    def value(self, name: str) -> float | None:
        value = getattr(self, name)
        return None if value is None else float(value)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data


Part = tuple[float, dict[str, str]]  # one deal's share of a quantity, and the sentence it rests on


def quantities(ledger: Ledger, as_of: date, lapse_days: int, mining_usd: float | None = None) -> Quantities:
    """What the ledger holds in force on ``as_of``, each quantity a sum of per-deal parts with the sentence
    and URL behind each; ``mining_usd`` is the trailing twelve months' mining revenue (for the AI mix)."""
    deals = ledger.as_of(as_of, lapse_days)
    in_force = [d for d in deals if d.family == COMPUTE and d.in_force(as_of)]
    tenants: dict[str, list[Deal]] = {}
    for deal in in_force:
        tenants.setdefault(deal.counterparty or "undisclosed", []).append(deal)
    soft = ledger.pending(as_of, lapse_days)
    power = [d for d in deals if d.family == "power" and d.in_force(as_of)]
    ai_power = [d for d in power if d.power_use == "ai"]
    partnerships = [d for d in deals if d.family == "partnership" and d.in_force(as_of)]
    financings = [d for d in deals if d.family == "financing" and d.signed_day
                  and (as_of - d.signed_day).days <= 365]
    parts: dict[str, list[Part]] = {
        "contracted_mw": _parts(in_force, lambda d: d.mw, "mw"),
        "contract_usd": _parts(in_force, lambda d: d.usd, "usd"),
        "annual_contracted_usd": _parts(in_force, lambda d: d.annual_usd, "usd"),
        "soft_pipeline_mw": _parts(soft, lambda d: d.mw, "proposal") + _parts(in_force, lambda d: d.option_mw, "mw"),
        "ai_power_mw": _parts(ai_power, lambda d: d.mw, "mw"),
        "backstop_usd": _parts(in_force, lambda d: d.backstop_usd, "backstop_usd"),
        "proposals": _parts(soft, lambda d: 1.0, "proposal"),
        "partnerships": _parts(partnerships, lambda d: 1.0, ""),
        "financing_raised_usd": _parts(financings, lambda d: d.usd, "usd"),
    }
    totals = {name: sum(value for value, _ in found) for name, found in parts.items()}
    return Quantities(
        ticker=ledger.ticker, as_of=as_of,
        tenants=tuple(TenantLine(t, sum(d.mw or 0 for d in ds), sum(d.usd or 0 for d in ds),
                                 sum(d.annual_usd or 0 for d in ds), len(ds)) for t, ds in sorted(tenants.items())),
        other_power_mw=sum(d.mw or 0 for d in power if d not in ai_power),
        lapsed=sum(1 for d in deals if d.status == "lapsed"),
        trailing_mining_usd=mining_usd,
        ai_mix=ai_mix(totals["annual_contracted_usd"], mining_usd),
        parts={**parts, "ai_mix": parts["annual_contracted_usd"]},
        **totals,
    )


def _parts(deals: list[Deal], value: Callable[[Deal], float | None], field_name: str) -> list[Part]:
    """Each deal's non-zero share, citing the sentence of ``field_name`` (else the deal's latest source)."""
    found = []
    for deal in deals:
        amount = value(deal)
        if amount:
            cite = deal.cited(field_name) if field_name else None
            found.append((float(amount), cite or (deal.sources[-1][1] if deal.sources else {})))
    return found


def ai_mix(annual_ai_usd: float, trailing_mining_usd: float | None) -> float | None:
    """Annual contracted AI/HPC revenue ÷ (that + trailing mining revenue); None without mining revenue."""
    if trailing_mining_usd is None or annual_ai_usd + trailing_mining_usd <= 0:
        return None
    return annual_ai_usd / (annual_ai_usd + trailing_mining_usd)


def units_text(q: Quantities) -> str:
    """The quantities as lines an analyst reads first, 80 columns wide."""
    def usd(value: float) -> str:
        return f"${value / 1e9:,.2f}bn" if value >= 1e9 else f"${value / 1e6:,.0f}m"

    lines = [f"{'Contracted, in force':24} {q.contracted_mw:,.0f} MW · {usd(q.contract_usd)} · "
             f"≈{usd(q.annual_contracted_usd)}/yr (derived)"]
    lines += [f"  {t.tenant[:22]:22} {t.mw:,.0f} MW · {usd(t.usd)} · ≈{usd(t.annual_usd)}/yr" for t in q.tenants]
    lines += [
        f"{'Soft pipeline':24} {q.soft_pipeline_mw:,.0f} MW, {q.proposals:g} proposals (optionality, never cash flow)",
        f"{'AI/HPC power':24} {q.ai_power_mw:,.0f} MW (other power {q.other_power_mw:,.0f} MW: mining or unspecified)",
        f"{'Backstops':24} {usd(q.backstop_usd)}; partnerships in force {q.partnerships:g}",
        f"{'Financing, last 365 days':24} {usd(q.financing_raised_usd)} raised",
        f"{'AI mix':24} " + (f"{q.ai_mix:.0%} of (contracted AI + trailing mining revenue)" if q.ai_mix is not None
                              else "n/a: no trailing mining revenue on file"),
    ]
    return "\n".join(lines)
