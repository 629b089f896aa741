"""The scorecard engine: pure functions from evidence and market data to pillar values and alerts.

Every number is explained: a pillar's value is built from contributions, each
a cited disclosure (sentence, URL, date) or a market observation, with the
points it added after decay. ``compute`` is deterministic for a given as-of
date, so a scorecard can be shown as it stood on any day, and ``decide``
compares two scorecards of one event to say whether it deserves an alert.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from typing import Any, Iterable

from monitor.ledger.build import Ledger
from monitor.ledger.units import Quantities, quantities
from monitor.score.thesis import EvidenceRule, MarketTerm, Pillar, QuantityTerm, Thesis

Series = dict[str, list[tuple[date, float]]]  # per series, (day, value) oldest first, one per day (as stored)


@dataclass(frozen=True)
class Evidence:
    """A stored disclosure as the engine sees it."""

    id: int
    document_id: int
    type: str
    commitment: str
    direction: str
    day: date
    sentence: str
    url: str
    counterparty: str | None = None
    mw: float | None = None
    usd: float | None = None
    start: int = 0  # the sentence's offset in its document

    @property
    def stable_id(self) -> str:
        """Names the disclosure across re-extractions, which renumber ``id``: document, sentence, type."""
        return f"{self.document_id}:{self.start}:{self.type}"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Evidence":
        def number(value: Any) -> float | None:
            return float(value) if isinstance(value, (int, float)) else None  # "withheld" is not a number

        return cls(row["id"], row["document_id"], row["type"], row["commitment"], row["direction"],
                   date.fromisoformat(str(row["published_at"])[:10]), row["sentence"], row["url"],
                   row.get("counterparty"), number(row.get("mw")), number(row.get("usd")), row.get("start") or 0)


@dataclass(frozen=True)
class Contribution:
    points: float
    why: str
    disclosure_id: int | None = None
    sentence: str = ""
    url: str = ""
    day: str = ""
    series: str = ""
    value: float | None = None


@dataclass(frozen=True)
class PillarScore:
    id: str
    name: str
    kind: str
    value: float
    points: float
    contributions: tuple[Contribution, ...]
    stale_since: str = ""  # its market data stopped on this day ("never": none yet): no reading, never 0 risk


@dataclass(frozen=True)
class Scorecard:
    thesis: str
    ticker: str
    as_of: date
    pillars: dict[str, PillarScore]
    backing: float
    quantities: Quantities | None = None  # the ledger in units, when the scorecard was computed with one

    def values(self) -> dict[str, float]:
        return {pid: p.value for pid, p in self.pillars.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "thesis": self.thesis, "ticker": self.ticker, "as_of": self.as_of.isoformat(),
            "cash_flow_backing": self.backing,
            "quantities": self.quantities.to_dict() if self.quantities else None,
            "pillars": {pid: {**_shallow(p), "contributions": [_shallow(c) for c in p.contributions]}
                        for pid, p in self.pillars.items()},
        }


def _shallow(item: Any) -> dict[str, Any]:
    """``asdict`` for a dataclass whose nested values are replaced anyway: the score stage turns every
    event's scorecard into a dict, and ``asdict``'s recursive deep copy was a quarter of its time."""
    return {f.name: getattr(item, f.name) for f in fields(item)}


def compute(thesis: Thesis, ticker: str, as_of: date, evidence: Iterable[Evidence], market: Series,
            market_as_of: date | None = None, ledger: Ledger | None = None,
            mining_usd: float | None = None) -> Scorecard:
    """The scorecard as it stood at the end of ``as_of`` (market data up to ``market_as_of``).

    With a ``ledger``, pillars read its quantities in units (contracted MW, annual contracted revenue …)
    as of that day; ``mining_usd`` (trailing mining revenue) makes the AI mix known.
    """
    known = [e for e in evidence if e.day <= as_of]
    market_day = market_as_of or as_of
    units = quantities(ledger, as_of, thesis.alerts.lapse_days, mining_usd) if ledger is not None else None
    pillars: dict[str, PillarScore] = {}
    for pillar in thesis.pillars:
        if pillar.inverse_of:
            continue
        contributions = [c for rule in pillar.evidence for c in _evidence_points(pillar, rule, known, as_of)]
        contributions += [c for term in pillar.quantities if units for c in _quantity_points(term, units)]
        observed = [_market_points(term, market, market_day, thesis.alerts.stale_market_days) for term in pillar.market]
        contributions += observed
        silent = [c for c in observed if c.value is None]
        stale = (max((c.day for c in silent), default="") or "never") if silent else ""
        points = sum(c.points for c in contributions)
        pillars[pillar.id] = PillarScore(pillar.id, pillar.name, pillar.kind, _value(pillar, points), round(points, 3),
                                         tuple(sorted(contributions, key=lambda c: -abs(c.points))), stale)
    for pillar in thesis.pillars:
        if pillar.inverse_of:
            base = pillars[pillar.inverse_of]
            why = f"100 - {base.name} ({base.value:.1f})"
            pillars[pillar.id] = PillarScore(pillar.id, pillar.name, pillar.kind, round(100 - base.value, 1),
                                             round(100 - base.value, 3), (Contribution(100 - base.value, why),))
    ordered = {p.id: pillars[p.id] for p in thesis.pillars}
    weights = {p.id: p.weight for p in thesis.pillars if p.kind == "backing" and p.weight > 0}
    backing = sum(ordered[pid].value * w for pid, w in weights.items()) / sum(weights.values())
    return Scorecard(thesis.id, ticker, as_of, ordered, round(backing, 1), units)


def _quantity_points(term: QuantityTerm, units: Quantities) -> list[Contribution]:
    """A ledger quantity's points, one contribution per deal citing its sentence; in force means in full."""
    found = []
    for share, cite in units.parts.get(term.quantity, []):
        if term.quantity == "ai_mix":
            continue  # a ratio has no per-deal points; thesis levels read it (alerts.levels)
        points = share * term.per_unit + share / 1e9 * term.per_billion
        shown = f"${share / 1e9:,.2f}bn" if term.per_billion else f"{share:,.4g}"
        why = f"{term.quantity.replace('_', ' ')} {shown} in force: {points:+.1f} pts (no decay)"
        found.append(Contribution(round(points, 3), why, None, cite.get("sentence", ""), cite.get("url", ""),
                                  cite.get("date", "")))
    return found


def matches(rule: EvidenceRule, item: Evidence) -> bool:
    return (item.type in rule.types and item.direction in rule.directions
            and rule.commitment in ("any", item.commitment))


def _evidence_points(pillar: Pillar, rule: EvidenceRule, known: list[Evidence], as_of: date) -> list[Contribution]:
    """One contribution per document and rule: a release that restates its lease in five sentences
    is one lease. Its points use the document's largest MW and $ figures; the sentence cited is the
    one that states them."""
    by_document: dict[int, list[Evidence]] = {}
    for item in known:
        if matches(rule, item):
            by_document.setdefault(item.document_id, []).append(item)
    found = []
    for items in by_document.values():
        mw = max((i.mw or 0 for i in items), default=0)
        usd = max((i.usd or 0 for i in items), default=0)
        cited = max(items, key=lambda i: (rule.per_mw * (i.mw or 0) + rule.per_usd_billion * (i.usd or 0) / 1e9,
                                          -items.index(i)))
        base = rule.points + rule.per_mw * mw + rule.per_usd_billion * usd / 1e9
        age = (as_of - cited.day).days
        decay = 0.5 ** (age / pillar.half_life_days)
        points = rule.sign * base * decay
        why = (f"{cited.commitment} {cited.type} {cited.direction}: {rule.sign * base:+.1f} pts"
               + (f" ({mw:g} MW)" if mw and rule.per_mw else "")
               + (f" (${usd / 1e9:.2f}bn)" if usd and rule.per_usd_billion else "")
               + (f", x{decay:.2f} after {age} days" if age else "")
               + (f"; {len(items) - 1} more sentences of the same document agree" if len(items) > 1 else ""))
        found.append(Contribution(round(points, 3), why, cited.id, cited.sentence, cited.url, cited.day.isoformat()))
    return found


def _market_points(term: MarketTerm, market: Series, as_of: date, stale_days: int) -> Contribution:
    """A market term's points; data that stopped more than ``stale_days`` before ``as_of`` is no reading
    (``value`` None, ``day`` the last observation), so a dead feed never reads as zero risk."""
    series = market.get(term.series, [])
    window = _window(series, as_of - timedelta(days=term.window_days), as_of)
    last_seen = _window(series, date.min, as_of)[-1:]
    if not window or (as_of - window[-1][0]).days > stale_days:
        since = last_seen[0][0].isoformat() if last_seen else ""
        return Contribution(0.0, f"{term.series}: no data since {since}" if since else
                            f"{term.series}: no data up to {as_of}", series=term.series, day=since)
    last_day, last = window[-1]
    if term.measure == "drawdown":
        high_day, high = max(window, key=lambda o: o[1])
        measured = (high - last) / high * 100 if high else 0.0
        why = f"{term.series} {last:,.2f} on {last_day}, {measured:.1f}% below its {term.window_days}-day high " \
              f"{high:,.2f} ({high_day})"
    elif term.measure == "level":
        measured = last
        why = f"{term.series} at {last:g} on {last_day}"
    else:
        first_day, first = window[0]
        measured = last - first
        why = f"{term.series} {measured:+g} since {first_day} ({first:g} → {last:g})"
    points = measured * term.scale
    return Contribution(round(points, 3), f"{why}: {points:+.1f} pts", series=term.series, value=last,
                        day=last_day.isoformat())


def _window(observations: list[tuple[date, float]], after: date, through: date) -> list[tuple[date, float]]:
    """The observations with ``after < day <= through``, found by bisection: a series is sorted by day, and
    scanning all of it (4,000 BTC days) for every scorecard made the score stage's time grow with the
    length of the series times the number of events."""
    start = bisect.bisect_right(observations, after, key=lambda o: o[0])
    return observations[start:bisect.bisect_right(observations, through, lo=start, key=lambda o: o[0])]


def _value(pillar: Pillar, points: float) -> float:
    if pillar.saturation == 0:
        return round(min(100.0, max(0.0, points)), 1)
    return round(100 * (1 - math.exp(-max(points, 0.0) / pillar.saturation)), 1)


# --- alert decisions --------------------------------------------------------------------------


@dataclass(frozen=True)
class PillarChange:
    pillar: str
    name: str
    before: float
    after: float
    reasons: tuple[str, ...]
    severity: str
    direction: str


@dataclass(frozen=True)
class AlertDecision:
    """One alert per event (per thesis and company), listing every pillar change that fired a rule."""

    key: str  # stable: the same change can never raise two alerts
    thesis: str
    ticker: str
    pillar: str  # the lead change's pillar
    event: str
    as_of: str
    severity: str  # info | medium | warning | high
    direction: str  # positive | negative (for the thesis)
    title: str
    before: float
    after: float
    reasons: tuple[str, ...]
    changes: tuple[PillarChange, ...] = ()
    evidence: tuple[dict[str, str], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SEVERITY_ORDER = ("info", "medium", "warning", "high")


def alert_key(thesis: str, ticker: str, event: str) -> str:
    return hashlib.sha256(f"{thesis}|{ticker}|{event}".encode()).hexdigest()[:32]


def decide(thesis: Thesis, before: Scorecard, after: Scorecard, event: str,
           new_evidence: list[Evidence], history: list[Evidence], levels: dict[str, int]) -> list[AlertDecision]:
    """At most one alert for an event, carrying every pillar change and reason that fired.

    ``levels`` holds, per pillar, how many thresholds its last alert was above; it
    is updated in place. A threshold alerts once on the way up, and only once the
    value has fallen ``alert_hysteresis`` below it on the way down, so a series
    that wobbles around a threshold does not alert every week.
    """
    changes: list[PillarChange] = []
    cited: list[Evidence] = []
    for pillar in thesis.pillars:
        if after.pillars[pillar.id].stale_since:
            continue  # no reading: neither a crossing nor a fall
        old, new = before.pillars[pillar.id].value, after.pillars[pillar.id].value
        fresh = [e for e in new_evidence if any(matches(rule, e) for rule in pillar.evidence)]
        reasons = _crossings(pillar, new, levels) + _step(pillar, old, new) + _evidence_reasons(pillar, fresh, history)
        if not reasons:
            continue
        changes.append(PillarChange(pillar.id, pillar.name, old, new, tuple(reasons), _severity(pillar, fresh),
                                    _direction(pillar, old, new, fresh)))
        cited += [e for e in fresh if e not in cited]
        if not fresh:
            cited += [_as_evidence(c) for c in after.pillars[pillar.id].contributions[:2] if c.sentence or c.series]
    if not changes:
        return []
    lead = max(changes, key=lambda c: (SEVERITY_ORDER.index(c.severity), abs(c.after - c.before)))
    title = "; ".join(f"{c.name} {c.before:.0f} → {c.after:.0f}" for c in changes)
    return [AlertDecision(
        key=alert_key(thesis.id, after.ticker, event), thesis=thesis.id, ticker=after.ticker, pillar=lead.pillar,
        event=event, as_of=after.as_of.isoformat(), severity=lead.severity, direction=lead.direction,
        title=f"{after.ticker} · {title}", before=lead.before, after=lead.after,
        reasons=tuple(f"{c.name}: {r}" for c in changes for r in c.reasons), changes=tuple(changes),
        evidence=tuple(cite_evidence(e) for e in cited),
    )]


def _direction(pillar: Pillar, old: float, new: float, fresh: list[Evidence]) -> str:
    if new == old:
        return "negative" if any(e.direction == "negative" for e in fresh) else "positive"
    rising = new > old
    return ("negative" if rising else "positive") if pillar.kind == "risk" else ("positive" if rising else "negative")


def _crossings(pillar: Pillar, new: float, levels: dict[str, int]) -> list[str]:
    thresholds = sorted(pillar.alert_thresholds)
    level = levels.get(pillar.id, 0)
    above = sum(1 for t in thresholds if new >= t)
    still_above = sum(1 for t in thresholds if new >= t - pillar.alert_hysteresis)
    if above > level:
        levels[pillar.id] = above
        return [f"crossed {t:g} upwards" for t in thresholds[level:above]]
    if still_above < level:
        levels[pillar.id] = still_above
        return [f"fell below {t:g}" for t in thresholds[still_above:level]]
    return []


def _step(pillar: Pillar, old: float, new: float) -> list[str]:
    if abs(new - old) >= pillar.alert_step:
        return [f"moved {new - old:+.1f} (step {pillar.alert_step:g})"]
    return []


def _evidence_reasons(pillar: Pillar, fresh: list[Evidence], history: list[Evidence]) -> list[str]:
    reasons = []
    for item in fresh:
        if item.direction == "negative":
            reasons.append(f"setback: {item.commitment} {item.type} disclosure reads negative (delay, termination, loss)")
        elif pillar.kind == "backing" and item.commitment == "binding":
            reasons.append(f"binding {item.type} disclosure"
                           + (f" with {item.counterparty}" if item.counterparty else ""))
            earlier = _soft_precursor(item, history)
            if earlier:
                reasons.append(f"soft announcement of {earlier.day} confirmed as binding")
        elif pillar.kind == "optionality":
            reasons.append(f"soft {item.type} announcement: optionality, not cash flow")
    return list(dict.fromkeys(reasons))


def _soft_precursor(item: Evidence, history: list[Evidence]) -> Evidence | None:
    for earlier in history:
        if earlier.commitment == "soft" and earlier.type == item.type and earlier.day < item.day \
                and earlier.counterparty and earlier.counterparty == item.counterparty:
            return earlier
    return None


def _severity(pillar: Pillar, fresh: list[Evidence]) -> str:
    """A pillar's move never pages high on its own: high is kept for deal events with their numbers and
    for distress (monitor.score.deal_alerts), so soft talk and index drift cannot raise one."""
    if pillar.kind == "optionality":
        return "info"
    if pillar.kind == "risk":
        return "warning"
    if any(e.direction == "negative" or e.commitment == "binding" for e in fresh):
        return "medium"
    return "info"


def cite_evidence(item: Evidence) -> dict[str, str]:
    return {"sentence": item.sentence, "url": item.url, "date": item.day.isoformat(),
            "disclosure": str(item.id) if item.id >= 0 else ""}


def _as_evidence(c: Contribution) -> Evidence:
    sentence = c.sentence or c.why
    return Evidence(c.disclosure_id if c.disclosure_id is not None else -1, -1, "market", "binding", "neutral",
                    date.fromisoformat(c.day) if c.day else date.min, sentence, c.url or c.series)
