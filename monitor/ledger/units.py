"""The scorecard in the analyst's units, as of a date: MW, dollars, dollars a year — from the ledger.

Contracted figures count deals in force (signed, not terminated, within their term): a contract does
not fade with age, it ends. Soft pipeline (proposals, options, ROFOs) is shown apart and never added
to contracted capacity. Power counts for AI/HPC only when its deal reads so; mining sites, demand-
response credits and mining plants' outages are power for mining or unspecified.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

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
    sources: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def value(self, name: str) -> float:
        return float(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data


def quantities(ledger: Ledger, as_of: date, lapse_days: int) -> Quantities:
    """What the ledger holds in force on ``as_of``, summed per quantity, each with its cited sources."""
    deals = ledger.as_of(as_of, lapse_days)
    in_force = [d for d in deals if d.family == COMPUTE and d.in_force(as_of)]
    tenants: dict[str, list[Deal]] = {}
    for deal in in_force:
        tenants.setdefault(deal.counterparty or "undisclosed", []).append(deal)
    soft = [d for d in deals if d.family == COMPUTE and d.status == "proposed"]
    power = [d for d in deals if d.family == "power" and d.status not in ("proposed", "lapsed", "terminated")]
    ai_power = [d for d in power if d.power_use == "ai"]
    financings = [d for d in deals if d.family == "financing" and d.signed_day
                  and (as_of - d.signed_day).days <= 365]
    return Quantities(
        ticker=ledger.ticker, as_of=as_of,
        contracted_mw=sum(d.mw or 0 for d in in_force),
        contract_usd=sum(d.usd or 0 for d in in_force),
        annual_contracted_usd=sum(d.annual_usd or 0 for d in in_force),
        tenants=tuple(TenantLine(t, sum(d.mw or 0 for d in ds), sum(d.usd or 0 for d in ds),
                                 sum(d.annual_usd or 0 for d in ds), len(ds)) for t, ds in sorted(tenants.items())),
        soft_pipeline_mw=sum(d.mw or 0 for d in soft) + sum(d.option_mw for d in in_force),
        ai_power_mw=sum(d.mw or 0 for d in ai_power),
        other_power_mw=sum(d.mw or 0 for d in power if d not in ai_power),
        backstop_usd=sum(d.backstop_usd or 0 for d in in_force),
        proposals=len(soft),
        lapsed=sum(1 for d in deals if d.status == "lapsed"),
        financing_raised_usd=sum(d.usd or 0 for d in financings),
        sources={
            "contracted_mw": [c for d in in_force if (c := d.cited("mw"))],
            "contract_usd": [c for d in in_force if (c := d.cited("usd"))],
            "ai_power_mw": [c for d in ai_power if (c := d.cited("mw"))],
            "financing_raised_usd": [c for d in financings if (c := d.cited("usd"))],
        },
    )


def ai_mix(annual_ai_usd: float, trailing_mining_usd: float | None) -> float | None:
    """Annual contracted AI/HPC revenue ÷ (that + trailing mining revenue); None without mining revenue."""
    if trailing_mining_usd is None or annual_ai_usd + trailing_mining_usd <= 0:
        return None
    return annual_ai_usd / (annual_ai_usd + trailing_mining_usd)
