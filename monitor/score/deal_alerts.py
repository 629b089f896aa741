"""Alerts that carry their numbers: deal events from the ledger, distress, and late disclosures.

One function per rule. Severity follows what the analyst acts on: a signed, confirmed or expanded
compute deal, a termination or a delay pages high with the deal's MW, value and term in the headline;
a stage reached (construction, delivery) or an amendment is medium; a proposal or option is
information only, never high; a restatement says nothing. Distress (going concern, Chapter 11,
default, a terminated restructuring agreement or lease, covenant breach, delisting) pages high
whatever pillar the sentence landed in.
"""

from __future__ import annotations

from datetime import date

from monitor.ledger.build import Deal, DealEvent, Ledger
from monitor.ledger.reading import distress_event
from monitor.ledger.rules import LedgerRules
from monitor.ledger.units import money
from monitor.score.engine import AlertDecision, Evidence, Scorecard, alert_key, cite_evidence
from monitor.score.thesis import Thesis

_SEVERITY = {
    "signed": "high", "confirmed": "high", "expanded": "high", "terminated": "high", "delayed": "high",
    "delivered": "medium", "under_construction": "medium", "amended": "medium", "proposed": "info", "option": "info",
}
_NEGATIVE = ("terminated", "delayed")
_PAGES = ("compute", "power", "partnership")  # financings are reported, never paged high
_DISTRESS_NAMES = {
    "going_concern": "going-concern doubt", "chapter_11": "Chapter 11 / creditor protection",
    "default": "default or acceleration", "restructuring_termination": "restructuring agreement terminated",
    "lease_termination": "lease terminated", "covenant_breach": "covenant breach", "delisting": "delisting notice",
}


def deal_alerts(thesis: Thesis, ticker: str, day: str, events: list[DealEvent]) -> list[AlertDecision]:
    """One alert per deal event of a document, except restatements (a known deal repeated adds nothing)."""
    alerts = []
    for event in events:
        severity = _severity(event, thesis)
        if severity is None:
            continue
        direction = "negative" if event.event in _NEGATIVE else "positive"
        headline = deal_headline(event)
        alerts.append(AlertDecision(
            key=alert_key(thesis.id, ticker, f"deal:{event.key}"), thesis=thesis.id, ticker=ticker,
            pillar=f"deal:{event.deal.family}", event=f"deal:{event.key}", as_of=day, severity=severity,
            direction=direction, title=f"{ticker} · {headline}", before=0.0, after=0.0,
            reasons=(f"deal {event.event}: {headline}",), evidence=event.cites[:5]))
    return alerts


def unit_alerts(thesis: Thesis, ticker: str, event: str, before: Scorecard, after: Scorecard,
                levels: dict[str, int]) -> list[AlertDecision]:
    """A quantity crossing one of the thesis' levels in units, up once, down once it has fallen back past
    the hysteresis; ``levels`` (per ``q:<quantity>``) is updated in place like the pillars' levels."""
    if before.quantities is None or after.quantities is None:
        return []
    alerts = []
    for level in thesis.alerts.levels:
        old, new = before.quantities.value(level.quantity), after.quantities.value(level.quantity)
        if new is None or new == old:
            continue  # an event that does not move the quantity crosses nothing (a restatement)
        name = f"q:{level.quantity}"
        thresholds = sorted(level.thresholds)
        was = levels.get(name, 0)
        above = sum(1 for t in thresholds if new >= t)
        still = sum(1 for t in thresholds if new >= t - level.hysteresis)
        if above > was:
            crossed, direction, levels[name] = thresholds[was:above], "positive", above
        elif still < was:
            crossed, direction, levels[name] = thresholds[still:was], "negative", still
        else:
            continue
        shown = ", ".join(unit_value(level.quantity, t) for t in crossed)
        title = (f"{ticker} · {level.quantity.replace('_', ' ')} "
                 f"{'crossed' if direction == 'positive' else 'fell below'} {shown}: "
                 f"{unit_value(level.quantity, old or 0)} → {unit_value(level.quantity, new)}")
        cites = after.quantities.cites(level.quantity)
        alerts.append(AlertDecision(
            key=alert_key(thesis.id, ticker, f"{name}:{event}"), thesis=thesis.id, ticker=ticker, pillar=name,
            event=event, as_of=after.as_of.isoformat(), severity="medium", direction=direction, title=title,
            before=old or 0.0, after=new, reasons=(title.split(" · ", 1)[1],), evidence=tuple(cites[:5])))
    return alerts


def unit_value(quantity: str, value: float) -> str:
    """A quantity in its unit: MW, dollars or a share."""
    if quantity.endswith("_mw"):
        return f"{value:,.0f} MW"
    if quantity.endswith("_usd"):
        return money(value)
    if quantity == "ai_mix":
        return f"{value:.0%}"
    return f"{value:g}"


def _severity(event: DealEvent, thesis: Thesis) -> str | None:
    """The event's severity, lowered when it should not page: high only for what moves the thesis (``_pages``),
    information for what is beside it."""
    severity = _SEVERITY.get(event.event)
    if severity == "high" and not _pages(event, thesis.alerts.new_deal_mw, thesis.alerts.new_deal_usd):
        severity = "medium"
    if severity == "medium" and event.event not in _NEGATIVE and _beside_the_thesis(event.deal):
        severity = "info"
    return severity


def _beside_the_thesis(deal: Deal) -> bool:
    """Good news the analyst is told of but need not act on: a financing that states no amount ("has committed
    financing in place"), or power for mining (a mining site, a demand-response credit): the thesis turns on
    AI power, and those moved it the wrong way before. Setbacks are never lowered here."""
    return (deal.family == "financing" and not deal.usd) or (deal.family == "power" and deal.power_use == "mining")


def _pages(event: DealEvent, new_deal_mw: float, new_deal_usd: float) -> bool:
    """High is for what moves the thesis: a compute deal from ``new_deal_mw`` MW or ``new_deal_usd`` of
    contract value (its increment when it grows), a setback, power that is power for AI/HPC, a partnership. Financings are reported, never paged
    high; a mining site, a demand-response credit or a mining plant's outage is not AI power."""
    deal = event.deal
    if deal.family not in _PAGES or (deal.family == "power" and deal.power_use != "ai"):
        return False
    if deal.family == "compute" and event.event in ("signed", "confirmed", "expanded"):
        mw, usd = (event.mw_delta, event.usd_delta) if event.event == "expanded" else (deal.mw, deal.usd)
        return (mw or 0) >= new_deal_mw or (usd or 0) >= new_deal_usd or not (mw or usd)
    return True


def lapse_alerts(thesis: str, ticker: str, day: date, ledger: Ledger, lapse_days: int) -> list[AlertDecision]:
    """One medium alert per proposal (LOI, MOU, option …) not confirmed within the thesis' window."""
    return [AlertDecision(
        key=alert_key(thesis, ticker, f"lapse:{deal.key}"), thesis=thesis, ticker=ticker, pillar="optionality",
        event=f"lapse:{deal.key}", as_of=day.isoformat(), severity="medium", direction="negative",
        title=f"{ticker} · proposal lapsed unconfirmed: {deal.kind} with {deal.counterparty or 'undisclosed party'}",
        before=0.0, after=0.0,
        reasons=(f"proposed {deal.last_day} and not confirmed as binding within {lapse_days} days",),
        evidence=tuple(c for _, c in deal.sources[:2])) for deal in ledger.as_of(day, lapse_days)
        if deal.status == "lapsed"]


def deal_headline(event: DealEvent) -> str:
    change = ""
    if event.event == "expanded" and event.mw_delta:
        change = f" by {event.mw_delta:,.0f} MW"
    return f"{deal_name(event.deal)} {event.event}{change}: {deal_numbers(event.deal)}"


def deal_name(deal: Deal) -> str:
    """"lease with Fluidstack at Barber Lake": what the deal is, with whom, where."""
    where = f" at {', '.join(deal.sites)}" if deal.sites else ""
    return f"{deal.kind} with {deal.counterparty or 'undisclosed party'}{where}"


def deal_numbers(deal: Deal) -> str:
    parts = []
    if deal.mw:
        parts.append(f"{deal.mw:,.0f} MW")
    if deal.usd:
        parts.append(money(deal.usd))
    if deal.term_years:
        parts.append(f"{deal.term_years:g} years")
    if deal.annual_usd:
        parts.append(f"≈{money(deal.annual_usd)}/yr (derived)")
    if deal.guarantor:
        parts.append(f"backstop {deal.guarantor}" + (f" {money(deal.backstop_usd)}" if deal.backstop_usd else ""))
    if deal.deliveries:
        parts.append(f"delivery {' / '.join(deal.deliveries)}")
    if deal.option_mw:
        parts.append(f"+{deal.option_mw:,.0f} MW optional")
    if deal.withheld:
        parts.append(f"withheld: {', '.join(deal.withheld)}")
    return ", ".join(parts) or "no figures disclosed"


def distress_alerts(thesis: str, ticker: str, day: str, document_id: int, new: list[Evidence],
                    rules: LedgerRules) -> list[AlertDecision]:
    """At most one high alert per distress event named in a document."""
    found: dict[str, list[Evidence]] = {}
    for item in new:
        name = distress_event(item.sentence, rules)
        if name:
            found.setdefault(name, []).append(item)
    return [AlertDecision(
        key=alert_key(thesis, ticker, f"distress:{document_id}:{name}"), thesis=thesis, ticker=ticker,
        pillar="distress", event=f"distress:{document_id}:{name}", as_of=day, severity="high", direction="negative",
        title=f"{ticker} · distress: {_DISTRESS_NAMES[name]}", before=0.0, after=0.0,
        reasons=(f"distress: {_DISTRESS_NAMES[name]}",),
        evidence=tuple(cite_evidence(e) for e in items[:3])) for name, items in found.items()]


def late_note(thesis: str, ticker: str, day: str, document_id: int, alerts: list[AlertDecision],
              latest: str) -> list[AlertDecision]:
    """A document dated before what the store already scored: history is updated as of its date, and the
    analyst gets one informational note instead of alerts that would re-arm or cross levels."""
    if not alerts:
        return []
    return [AlertDecision(
        key=alert_key(thesis, ticker, f"late:{document_id}"), thesis=thesis, ticker=ticker, pillar="late",
        event=f"late:{document_id}", as_of=day, severity="info",
        direction="negative" if any(a.direction == "negative" for a in alerts) else "positive",
        title=f"{ticker} · late disclosure dated {day} (scored after {latest})", before=0.0, after=0.0,
        reasons=tuple(a.title for a in alerts), evidence=tuple(c for a in alerts for c in a.evidence)[:5])]
