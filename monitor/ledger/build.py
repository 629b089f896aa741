"""Link a company's facts, in time order, into deals: the ledger.

Documents are taken in (date, id) order and, within one, facts are grouped into *mentions*: one per
family and counterparty (a sentence that names no party takes the one its document names for that
family). A mention links to the company's deal with the same family and counterparty (and site, when
both name one); a mention the rules cannot place with confidence (no party, several candidate deals) is
listed as unlinked for review, never merged. Figures follow their role: a total sets, an increment adds,
a restatement confirms and never adds, upside ("if all renewal options are exercised") is not contract
value. Every change is a DealEvent holding the deal as it stood after it, so the ledger as of any date is
the last event of each deal on or before that date — a late document takes its place in time and later
events are recomputed from it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from itertools import groupby
from typing import Any, Iterable

from monitor.ledger.reading import Fact

SOFT_FAMILIES = ("compute", "power", "partnership")  # financings are never optionality
ACTIVE = ("signed", "expanded", "amended", "under_construction", "delivered", "delayed")
SUPERSEDING = ("signed", "confirmed", "expanded")  # events that commit a party to more: they overtake proposals
_PROGRESS = {"proposed": 0, "signed": 1, "confirmed": 1, "restated": 1, "amended": 2, "expanded": 2,
             "under_construction": 3, "delivered": 4}
_SETBACKS = ("terminated", "delayed")
_STAGES = ("delivered", "under_construction")


@dataclass(frozen=True)
class Deal:
    """A deal as it stood after one event. Figures are None when never stated."""

    key: str
    ticker: str
    family: str
    kind: str
    counterparty: str | None
    sites: tuple[str, ...]
    status: str
    mw: float | None = None
    usd: float | None = None
    term_years: float | None = None
    option_mw: float = 0.0  # soft upside on the deal (options, ROFO): optionality, never contracted
    guarantor: str | None = None
    backstop_usd: float | None = None
    power_use: str = ""
    series: str | None = None  # a financing's issue by maturity year: two issues in a month stay two deals
    deliveries: tuple[str, ...] = ()  # delivery dates as stated, in order ("Q4 of 2025", "2027"); plans, not facts
    withheld: tuple[str, ...] = ()
    first_day: date | None = None
    signed_day: date | None = None
    last_day: date | None = None
    sources: tuple[tuple[str, dict[str, str]], ...] = ()  # (field, citation) for every field set

    @property
    def annual_usd(self) -> float | None:
        """Implied annual revenue, value ÷ term: derived, never disclosed as such."""
        if self.usd and self.term_years:
            return self.usd / self.term_years
        return None

    def in_force(self, as_of: date) -> bool:
        """Signed and not terminated, and within its term when the term is known: a contract in force
        does not fade, it ends."""
        if self.status not in ACTIVE:
            return False
        if self.signed_day and self.term_years:
            return as_of < self.signed_day + timedelta(days=round(self.term_years * 365.25))
        return True

    def cited(self, name: str) -> dict[str, str] | None:
        return next((c for f, c in reversed(self.sources) if f == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("first_day", "signed_day", "last_day"):
            data[name] = data[name].isoformat() if data[name] else None
        data["sources"] = [[f, c] for f, c in self.sources]
        data["annual_usd"] = self.annual_usd
        data["annual_usd_derived"] = self.annual_usd is not None
        return data


@dataclass(frozen=True)
class DealEvent:
    deal: Deal  # after the event
    day: date
    document_id: int
    event: str  # proposed | signed | confirmed | expanded | amended | restated | construction | delivered | delayed | terminated | option
    mw_delta: float = 0.0
    usd_delta: float = 0.0
    cites: tuple[dict[str, str], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.deal.key}|{self.document_id}|{self.event}"


@dataclass(frozen=True)
class Unlinked:
    ticker: str
    document_id: int
    day: date
    family: str
    reason: str
    candidates: tuple[str, ...]
    cites: tuple[dict[str, str], ...]


Revenue = tuple[str, Any, Any, float, str, str]  # concept, start, end, value, filed, url (company_facts)


@dataclass
class Ledger:
    ticker: str
    events: list[DealEvent] = field(default_factory=list)
    unlinked: list[Unlinked] = field(default_factory=list)
    revenue: list[Revenue] = field(default_factory=list)  # reported revenue (XBRL), for the AI mix

    def as_of(self, day: date | None = None, lapse_days: int | None = None) -> list[Deal]:
        """Each deal as it stood at the end of ``day``; a proposal overtaken by a binding deal reads
        ``superseded``, and one older than ``lapse_days`` and never confirmed reads ``lapsed``."""
        latest: dict[str, Deal] = {}
        committed: dict[str, date] = {}  # per deal, the last day it was signed, confirmed or expanded
        for event in self.events:
            if day is None or event.day <= day:
                latest[event.deal.key] = event.deal
                if event.event in SUPERSEDING:
                    committed[event.deal.key] = event.day
        deals = [replace(d, status="superseded") if _superseded(d, latest, committed) else d for d in latest.values()]
        if lapse_days is not None and day is not None:
            deals = [replace(d, status="lapsed") if _lapsed(d, day, lapse_days) else d for d in deals]
        return deals

    def pending(self, day: date, lapse_days: int) -> list[Deal]:
        """The soft announcements still pending on ``day``: proposals (LOI, MOU, term sheet, exclusivity …)
        neither confirmed nor lapsed. The one rule behind the score engine's optionality, lapse alerts, the
        digest's pending list and the Datasette query."""
        return [d for d in self.as_of(day, lapse_days) if d.status == "proposed" and d.family in SOFT_FAMILIES]

    def without(self, document_id: int) -> "Ledger":
        """The ledger as if the document had not been read (what an event's "before" reads)."""
        return Ledger(self.ticker, [e for e in self.events if e.document_id != document_id], self.unlinked,
                      self.revenue)

    def events_of(self, document_id: int) -> list[DealEvent]:
        return [e for e in self.events if e.document_id == document_id]


def _superseded(deal: Deal, deals: dict[str, Deal], committed: dict[str, date]) -> bool:
    """A proposal overtaken by a binding deal of its family made after it: talk of prospects that named nobody
    ("discussions with potential clients for 300 MW") once the company signs or expands such a deal, or a
    proposal for a site that then went to another party. It is neither pending nor lapsed: what came of it
    is the binding deal (a lapse alert would say "unconfirmed" of a pipeline that turned into contracts)."""
    if deal.status != "proposed" or deal.first_day is None:
        return False
    for other in deals.values():
        since = committed.get(other.key)
        if (other.key == deal.key or other.family != deal.family or other.status not in ACTIVE or since is None
                or since <= deal.first_day):
            continue
        same_site = bool(set(deal.sites) & set(other.sites))
        if (deal.counterparty is None and (same_site or not deal.sites)) or (
                same_site and other.counterparty != deal.counterparty):
            return True
    return False


def _lapsed(deal: Deal, day: date, lapse_days: int) -> bool:
    return deal.status == "proposed" and deal.last_day is not None and (day - deal.last_day).days >= lapse_days


def build(ticker: str, facts: Iterable[Fact]) -> Ledger:
    """The company's ledger from all its facts (any order)."""
    ledger = Ledger(ticker)
    deals: dict[str, Deal] = {}
    ordered = sorted(facts, key=lambda f: (f.day, f.document_id, f.start))
    for (day, document_id), group in groupby(ordered, key=lambda f: (f.day, f.document_id)):
        for mention in _mentions(list(group)):
            _link(ledger, deals, mention, day, document_id)
    return ledger


@dataclass
class _Mention:
    family: str
    counterparty: str | None
    facts: list[Fact]
    backstops: list[Fact] = field(default_factory=list)

    @property
    def binding(self) -> list[Fact]:
        """The binding facts, unless every one is a bare list item beside a proposal of the same deal (a bid,
        an LOI): then the document only proposes it ("stalking horse bid … four plants": 40 MW, 110 MW)."""
        firm = [f for f in self.facts if f.commitment == "binding"]
        if firm and all(f.bare for f in firm) and any(f.commitment == "soft" and f.proposal_worded for f in self.facts):
            return []
        return firm

    @property
    def site(self) -> str | None:
        sites = Counter(f.site for f in self.facts + self.backstops if f.site)
        return sites.most_common(1)[0][0] if sites else None

    @property
    def series(self) -> str | None:
        """The financing's issue as the document's first sentence naming one states it."""
        return next((f.series for f in sorted(self.facts, key=lambda f: f.start) if f.series), None)


def _mentions(facts: list[Fact]) -> list[_Mention]:
    """One document's facts grouped per family and counterparty; backstops ride on their tenant's mention.

    A binding sentence without a name continues its document's deal. Soft talk without one joins the
    document's deal of its family when there is one (its upside becomes an option there), else it is a
    proposal of its own ("discussions with potential clients").
    """
    party = {family: _main_party(facts, family) for family in {f.family for f in facts}}
    mentions: dict[tuple[str, str | None], _Mention] = {}
    for fact in sorted(facts, key=lambda f: f.commitment != "binding"):
        if fact.kind == "backstop":
            continue
        counterparty = None if fact.family == "financing" else fact.counterparty  # underwriters are not parties
        if counterparty is None and fact.family != "financing":
            main = party.get(fact.family)
            if fact.commitment == "binding" or ((fact.family, main) in mentions and not fact.prospect):
                counterparty = main
        mentions.setdefault((fact.family, counterparty), _Mention(fact.family, counterparty, [])).facts.append(fact)
    for fact in (f for f in facts if f.kind == "backstop"):
        tenant = next((p for p in fact.parties if p != fact.counterparty), None) or party.get("compute")
        mention = mentions.get(("compute", tenant))
        if mention is None:
            mentions.setdefault(("partnership", fact.counterparty),
                                _Mention("partnership", fact.counterparty, [])).facts.append(fact)
        else:
            mention.backstops.append(fact)
    return list(mentions.values())


def _main_party(facts: list[Fact], family: str) -> str | None:
    named = Counter(f.counterparty for f in facts if f.family == family and f.counterparty and f.kind != "backstop")
    return named.most_common(1)[0][0] if named else None


FINANCING_LINK_DAYS = 30  # pricing, closing and greenshoe of one offering fall within a month


def _link(ledger: Ledger, deals: dict[str, Deal], mention: _Mention, day: date, document_id: int) -> None:
    candidates = _candidates(deals, mention, day)
    reason = _unsure(deals, mention, candidates)
    if reason:
        ledger.unlinked.append(Unlinked(
            ledger.ticker, document_id, day, mention.family, reason,
            tuple(d.key for d in (candidates if len(candidates) > 1 else _family(deals, mention.family))),
            tuple(f.cite() for f in mention.facts + mention.backstops)))
        return
    current = candidates[0] if candidates else None
    for event in _apply(ledger.ticker, deals, current, mention, day, document_id):
        deals[event.deal.key] = event.deal
        ledger.events.append(event)


def _unsure(deals: dict[str, Deal], mention: _Mention, candidates: list[Deal]) -> str | None:
    """Why the rules will not place a mention (it goes to the review list), or None."""
    figures = any(f.mw or f.usd for f in mention.facts)
    if len(candidates) > 1:
        return "several deals could be meant"
    if mention.family == "financing":
        return None if candidates or any(f.usd for f in mention.facts) else "a financing with no amount"
    if mention.counterparty is None and not mention.site:
        if mention.binding and _family(deals, mention.family):
            return "names no counterparty and could continue a known deal"  # never confirms one by guess
        if not figures:
            return "names no counterparty, site or figure"
    return None


def _family(deals: dict[str, Deal], family: str) -> list[Deal]:
    return [d for d in deals.values() if d.family == family and d.status != "terminated"]


def _candidates(deals: dict[str, Deal], mention: _Mention, day: date) -> list[Deal]:
    """The deals a mention may continue: same family and party; a named site must not contradict the
    deal's sites unless the mention expands or restates (a new lease at another campus is a new deal)."""
    live = _family(deals, mention.family)
    if mention.family == "financing":
        kind, series = _kind(mention.facts, ""), mention.series
        return [d for d in live if d.kind == kind and d.last_day and (day - d.last_day).days <= FINANCING_LINK_DAYS
                and not (series and d.series and series != d.series)][-1:]
    site = mention.site
    if site and mention.counterparty is None:
        return [d for d in live if site in d.sites]
    found = [d for d in live if d.counterparty == mention.counterparty]
    if site and _new_contract(mention):
        found = [d for d in found if not d.sites or site in d.sites]
    return found


def _new_contract(mention: _Mention) -> bool:
    return all(f.event == "signed" and f.mw_role != "restated" for f in mention.binding) and bool(mention.binding)


def _apply(ticker: str, deals: dict[str, Deal], current: Deal | None, mention: _Mention, day: date,
           document_id: int) -> list[DealEvent]:
    binding = mention.binding
    if not binding:
        return _soft(ticker, deals, current, mention, day, document_id)
    deal = current or _new_deal(ticker, deals, mention, day)
    firm = [f for f in binding if f.mw_role != "upside" or f.usd_role != "upside"]
    mw, mw_cite = _resolve(deal.mw if current else None, firm, "mw")
    usd, usd_cite = _resolve(deal.usd if current else None, firm, "usd")
    backstop, backstop_cite = _resolve(deal.backstop_usd, mention.backstops, "usd")
    term = max((f.term_years for f in binding if f.term_years), default=None) or deal.term_years
    term_fact = next((f for f in binding if f.term_years == term), None)
    sources = list(deal.sources)
    dated = [f for f in mention.facts if set(f.deliveries) - set(deal.deliveries)]
    sources += [("delivery", f.cite()) for f in dated]
    for name, cite in (("mw", mw_cite), ("usd", usd_cite), ("backstop_usd", backstop_cite),
                       ("term_years", term_fact.cite() if term_fact else None),
                       ("guarantor", mention.backstops[0].cite() if mention.backstops else None)):
        if cite:
            sources.append((name, cite))
    cues = {f.event for f in binding}
    lead = _lead_event(current, deal, cues, mw, usd, any(f.refers_back for f in binding))
    status = _status(deal.status if current else "proposed", {lead} | (cues & set(_STAGES)))
    grown = (mw or 0) - (deal.mw or 0) if current else 0.0
    option = max(0.0, deal.option_mw - grown) + _option_mw(mention)  # an exercised option is contract now
    after = replace(
        deal, status=status, mw=mw, usd=usd, term_years=term, backstop_usd=backstop,
        guarantor=next((f.counterparty for f in mention.backstops if f.counterparty), deal.guarantor),
        kind=deal.kind if current and current.status != "proposed" else _kind(binding, deal.kind),
        sites=_sites(deal, mention), withheld=tuple(sorted(set(deal.withheld) | {w for f in binding for w in f.withheld})),
        power_use=_power_use(deal, mention.facts), series=deal.series or mention.series,
        deliveries=tuple(dict.fromkeys(deal.deliveries + tuple(d for f in dated for d in f.deliveries))),
        signed_day=deal.signed_day or (day if status in ACTIVE else None),
        last_day=day, option_mw=option, sources=tuple(sources),
    )
    cites = tuple(f.cite() for f in binding + mention.backstops)
    if current is not None:
        mw_delta, usd_delta = (mw or 0) - (deal.mw or 0), (usd or 0) - (deal.usd or 0)
    elif lead in ("expanded", "amended"):  # a change to a deal made before the documents at hand
        mw_delta, usd_delta = _stated_increment(firm, "mw"), _stated_increment(firm, "usd")
    else:
        mw_delta, usd_delta = mw or 0, usd or 0
    return [DealEvent(after, day, document_id, lead, mw_delta, usd_delta, cites)]


def _stated_increment(facts: list[Fact], name: str) -> float:
    """What a document that changes an earlier deal adds: its increments, else the figures it states for
    the change itself (never the totals it restates)."""
    for role in ("increment", "stated"):
        found = [getattr(f, name) for f in facts if getattr(f, name) and getattr(f, f"{name}_role") == role]
        if found:
            return max(found)
    return 0.0


def _lead_event(current: Deal | None, deal: Deal, cues: set[str], mw: float | None, usd: float | None,
                refers_back: bool) -> str:
    """What the document did to the deal, the news an alert leads with: a setback first, else what its
    figures did (signed, confirmed, expanded, amended), else a stage reached, else a restatement."""
    setback = next((e for e in _SETBACKS if e in cues), None)
    if setback:
        return setback
    stage = next((e for e in _STAGES if e in cues), None)
    if current is None or current.status == "proposed":
        if refers_back and cues & {"expanded", "amended"}:  # "its original transaction": a change
            return "amended" if "amended" in cues else "expanded"
        return "signed" if current is None else "confirmed"
    grew = (mw or 0) > (deal.mw or 0) or (usd or 0) > (deal.usd or 0)
    if "amended" in cues:
        return "amended"
    if grew:
        return "expanded"
    return stage or "restated"


def _soft(ticker: str, deals: dict[str, Deal], current: Deal | None, mention: _Mention, day: date,
          document_id: int) -> list[DealEvent]:
    """Soft talk: a new proposal, or an option on a deal already signed (optionality, never contract)."""
    cites = tuple(f.cite() for f in mention.facts)
    setback = next((f.event for f in mention.facts if f.event in ("terminated", "delayed")), None)
    if current is not None and current.status != "proposed":
        if setback:
            return [DealEvent(replace(current, status=setback, last_day=day), day, document_id, setback, cites=cites)]
        option = _option_mw(mention)
        if not option:
            return []
        return [DealEvent(replace(current, option_mw=current.option_mw + option, last_day=day), day, document_id,
                          "option", mw_delta=option, cites=cites)]
    if current is None and mention.family not in SOFT_FAMILIES:
        return []  # talk of money to come ("intends to fund it with $118m of equity") is no deal, nor optionality
    deal = current or _new_deal(ticker, deals, mention, day)
    mw = max((f.mw for f in mention.facts if f.mw and f.mw_role not in ("restated", "upside")), default=None)
    usd = max((f.usd for f in mention.facts if f.usd and f.usd_role not in ("restated", "upside")), default=None)
    after = replace(deal, status=setback or "proposed", mw=mw or deal.mw, usd=usd or deal.usd, last_day=day,
                    kind=_kind(mention.facts, deal.kind), power_use=_power_use(deal, mention.facts),
                    sites=_sites(deal, mention), option_mw=deal.option_mw + _option_mw(mention),
                    sources=deal.sources + tuple(("proposal", f.cite()) for f in mention.facts[:1]))
    return [DealEvent(after, day, document_id, setback or "proposed", cites=cites)]


def _new_deal(ticker: str, deals: dict[str, Deal], mention: _Mention, day: date) -> Deal:
    base = f"{ticker}|{mention.family}|{mention.counterparty or 'undisclosed'}|{mention.site or '-'}"
    key, n = base, 1
    while key in deals:
        n += 1
        key = f"{base}#{n}"
    return Deal(key, ticker, mention.family, _kind(mention.facts or mention.backstops, ""), mention.counterparty,
                (), "proposed", first_day=day, series=mention.series)


def _sites(deal: Deal, mention: _Mention) -> tuple[str, ...]:
    named = [f.site for f in mention.facts if f.site]
    return tuple(dict.fromkeys(deal.sites + tuple(named)))


def _resolve(current: float | None, facts: list[Fact], name: str) -> tuple[float | None, dict[str, str] | None]:
    """A field's value after a document: its total if it states one, else the old value plus its increment,
    else what it states when the deal is new or the figure exceeds the old one; a restatement changes nothing
    and upside ("if all options are exercised") is never contract value."""
    by_role: dict[str, list[Fact]] = {}
    for fact in facts:
        value = getattr(fact, name)
        if value:
            by_role.setdefault(getattr(fact, f"{name}_role"), []).append(fact)

    def largest(role: str) -> Fact | None:
        return max(by_role.get(role, []), key=lambda f: getattr(f, name), default=None)

    total, increment, stated = largest("total"), largest("increment"), largest("stated")
    if total is not None and (current is None or getattr(total, name) >= current):
        return getattr(total, name), total.cite()
    if current is None:
        best = max((f for f in (increment, stated) if f), key=lambda f: getattr(f, name), default=None)
        return (getattr(best, name), best.cite()) if best else (None, None)
    if increment is not None:
        return current + getattr(increment, name), increment.cite()
    if stated is not None and getattr(stated, name) > current:
        return getattr(stated, name), stated.cite()
    return current, None


def _option_mw(mention: _Mention) -> float:
    """Upside MW (an option, a ROFO, exclusivity): optionality on the deal, never contracted capacity."""
    return max((f.mw for f in mention.facts if f.mw and f.mw_role == "upside"), default=0.0)


def _kind(facts: list[Fact], fallback: str) -> str:
    """The kind most of the deal's sentences name ("Secured $9.7bn AI Cloud Contract"); a sentence that names
    none ("Secured $9.7bn contract with Microsoft:") only counts when none does."""
    named = Counter(f.kind for f in facts if f.kind != "backstop" and f.kind_named)
    kinds = named or Counter(f.kind for f in facts if f.kind != "backstop")
    return kinds.most_common(1)[0][0] if kinds else fallback or "backstop"


def _power_use(deal: Deal, facts: list[Fact]) -> str:
    """AI when a sentence of the deal says so outright; mining when one speaks of mining; AI on weak words
    ("data center") only when none speaks of mining; else unspecified."""
    uses = {f.power_use for f in facts if f.power_use} | ({deal.power_use} if deal.power_use else set())
    for use in ("ai", "mining"):
        if use in uses:
            return use
    return "ai" if "ai_weak" in uses else ("unspecified" if uses else "")


def _status(before: str, events: set[str]) -> str:
    """A setback sets the status; otherwise the deal stands at the furthest stage it has reached."""
    setback = next((e for e in _SETBACKS if e in events), None)
    if setback:
        return setback
    reached = max([before] + [e for e in events if e in _PROGRESS], key=lambda e: _PROGRESS.get(e, 0))
    return {"confirmed": "signed", "restated": "signed", "proposed": "signed"}.get(reached, reached)
