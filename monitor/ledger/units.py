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
    usd_without_term: float = 0.0  # contract value whose term is not on file: no annual revenue derived


@dataclass(frozen=True)
class Quantities:
    ticker: str
    as_of: date
    contracted_mw: float = 0.0
    contract_usd: float = 0.0
    annual_contracted_usd: float = 0.0  # derived: value ÷ term per deal
    contract_usd_without_term: float = 0.0  # in-force value with no term on file, left out of the annual figure
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
    and URL behind each; ``mining_usd`` is the trailing twelve months' mining revenue (for the AI mix),
    else the company's reported revenue as of that day (``trailing_revenue``)."""
    deals = ledger.as_of(as_of, lapse_days)
    reported = trailing_revenue(ledger.revenue, as_of) if mining_usd is None else None
    if reported is not None:
        mining_usd = reported[0]
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
        "contract_usd_without_term": _parts(in_force, lambda d: d.usd if d.annual_usd is None else None, "usd"),
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
                                 sum(d.annual_usd or 0 for d in ds), len(ds),
                                 sum(d.usd or 0 for d in ds if d.annual_usd is None))
                      for t, ds in sorted(tenants.items())),
        other_power_mw=sum(d.mw or 0 for d in power if d not in ai_power),
        lapsed=sum(1 for d in deals if d.status == "lapsed"),
        trailing_mining_usd=mining_usd,
        ai_mix=ai_mix(totals["annual_contracted_usd"], mining_usd),
        parts={**parts, "ai_mix": parts["annual_contracted_usd"] + ([(reported[0], reported[1])] if reported else [])},
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


FISCAL_YEAR_DAYS = (350, 380)  # a reported period of this length is a fiscal year


def trailing_revenue(rows: list[Any], as_of: date) -> tuple[float, dict[str, str]] | None:
    """Trailing twelve months' reported revenue known on ``as_of``, with the line it rests on.

    The last fiscal year filed by then, rolled forward by the current year-to-date less the same span of
    the year before (how analysts build a TTM from 10-K and 10-Q figures, since a fourth quarter is only
    filed inside the year). The first revenue concept the company reports is used.
    """
    known = [r for r in rows if str(r[4]) <= as_of.isoformat()]
    if not known:
        return None
    concept = known[0][0]
    periods = [(date.fromisoformat(str(r[1])), date.fromisoformat(str(r[2])), float(r[3]), str(r[5]))
               for r in known if r[0] == concept]
    years = [p for p in periods if FISCAL_YEAR_DAYS[0] <= (p[1] - p[0]).days <= FISCAL_YEAR_DAYS[1]]
    if not years:
        return None
    start, end, value, url = max(years, key=lambda p: p[1])
    line = f"{concept} {start}–{end}: ${value / 1e6:,.0f}m"
    ytd = [p for p in periods if (p[0] - end).days == 1 and p[1] > end]
    if ytd:
        y_start, y_end, y_value, _ = max(ytd, key=lambda p: p[1])
        before = [p for p in periods if p[0] == start and abs((y_end - p[1]).days - 365) <= 7]
        if before:
            value += y_value - before[0][2]
            line += (f" + {y_start}–{y_end} ${y_value / 1e6:,.0f}m − {before[0][0]}–{before[0][1]} "
                     f"${before[0][2] / 1e6:,.0f}m")
    return value, {"sentence": f"trailing revenue (SEC XBRL): {line}", "url": url, "date": as_of.isoformat()}


def money(usd: float) -> str:
    """Dollars as an analyst reads them: $8.70bn, $725m."""
    return f"${usd / 1e9:,.2f}bn" if usd >= 1e9 else f"${usd / 1e6:,.0f}m"


def annual_text(annual_usd: float, usd_without_term: float) -> str:
    """Annual revenue as derived (value ÷ term), saying what it leaves out: a contract whose term is not on
    file has no annual figure, and "$0m/yr" beside $9.70bn would read as a contract earning nothing."""
    if usd_without_term and not annual_usd:
        return "annual n/a: no term on file"
    derived = f"≈{money(annual_usd)}/yr (derived)"
    return f"{derived}, excl. {money(usd_without_term)} with no term" if usd_without_term else derived


def units_text(q: Quantities) -> str:
    """The quantities as lines an analyst reads first, 80 columns wide."""
    usd = money
    lines = [f"{'Contracted, in force':24} {q.contracted_mw:,.0f} MW · {usd(q.contract_usd)} · "
             f"{annual_text(q.annual_contracted_usd, q.contract_usd_without_term)}"]
    lines += [f"  {t.tenant[:22]:22} {t.mw:,.0f} MW · {usd(t.usd)} · {annual_text(t.annual_usd, t.usd_without_term)}"
              for t in q.tenants]
    lines += [
        f"{'Soft pipeline':24} {q.soft_pipeline_mw:,.0f} MW, {q.proposals:g} proposals (optionality, never cash flow)",
        f"{'AI/HPC power':24} {q.ai_power_mw:,.0f} MW (other power {q.other_power_mw:,.0f} MW: mining or unspecified)",
        f"{'Backstops':24} {usd(q.backstop_usd)}; partnerships in force {q.partnerships:g}",
        f"{'Financing, last 365 days':24} {usd(q.financing_raised_usd)} raised",
        f"{'AI mix':24} " + (f"{q.ai_mix:.0%}: ≈{usd(q.annual_contracted_usd)}/yr contracted AI ÷ (that + "
                              f"{usd(q.trailing_mining_usd or 0)} trailing revenue, SEC XBRL)"
                              if q.ai_mix is not None else "n/a: no trailing revenue on file (SEC XBRL)"),
    ]
    return "\n".join(lines)
