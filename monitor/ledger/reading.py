"""What one stored disclosure says about a deal: kind, event, site, party, and the role of each figure.

The reader (monitor.extract) says *that* a sentence discloses contracted compute and which figures it
states; the ledger needs more: is "400MW" the deal's new total, "an additional 150MW" an increment,
"$17.7 billion if all renewal options are exercised" upside that is not contracted, "Polaris Forge 1"
the campus? Those readings are rules (``rules/ledger.toml``), applied here one disclosure at a time;
linking them across documents is monitor.ledger.build's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, NamedTuple

from monitor.extract import fields as figures
from monitor.extract.model import WITHHELD
from monitor.extract.rules import Rules, any_match
from monitor.ledger.rules import FAMILY_OF_TYPE, LedgerRules

Role = str  # total | increment | stated | restated | upside


@dataclass(frozen=True)
class Fact:
    """A disclosure as the ledger reads it. ``counterparty`` is as named (normalised), or None."""

    ticker: str
    document_id: int
    start: int
    type: str
    family: str  # compute | partnership | power | financing
    day: date
    url: str
    sentence: str
    commitment: str
    direction: str
    kind: str
    event: str  # proposed | signed | expanded | amended | under_construction | delivered | delayed | terminated
    counterparty: str | None
    site: str | None
    mw: float | None
    mw_role: Role
    usd: float | None
    usd_role: Role
    term_years: float | None
    withheld: tuple[str, ...]
    parties: tuple[str, ...]  # every known party the sentence names (a backstop names guarantor and tenant)
    power_use: str  # ai | mining | ai_weak | unspecified (power facts)
    refers_back: bool = False  # names an earlier agreement ("its original transaction"): a change to a deal
    prospect: bool = False  # talk of prospects ("discussions with potential clients"): nobody's deal yet
    series: str | None = None  # a financing's issue, by maturity ("2031" for notes due 2031)
    kind_named: bool = False  # the sentence names its kind ("cloud contract"), not left to the default
    bare: bool = False  # a binding list item with no verb of commitment ("40 MW facility in Kapuskasing")
    proposal_worded: bool = False  # names a bid, an LOI, an MOU or a term sheet
    deliveries: tuple[str, ...] = ()  # when its capacity is (to be) delivered, as stated ("Q4 of 2025")

    @property
    def stable_id(self) -> str:
        return f"{self.document_id}:{self.start}:{self.type}"

    def cite(self) -> dict[str, str]:
        return {"sentence": self.sentence, "url": self.url, "date": self.day.isoformat(), "disclosure": self.stable_id}


def read_fact(row: dict[str, Any], rules: LedgerRules, xrules: Rules) -> Fact | None:
    """The ledger's reading of one stored disclosure row; None for types the ledger does not hold."""
    family = FAMILY_OF_TYPE.get(row["type"])
    if family is None:
        return None
    sentence = row["sentence"]
    if family == "financing" and any_match(rules.not_raising, sentence) and not any_match(rules.raising_terms, sentence):
        return None
    parties = named_parties(sentence, xrules, rules)
    counterparty = normalise_party(row.get("counterparty"), rules)
    if counterparty and counterparty in {normalise_party(n, rules) for n in own_names(sentence, rules)}:
        counterparty = None
    if counterparty is None and parties:
        counterparty = parties[0]
    wording = _wording(sentence, rules)
    # A bid or an LOI the reader took as binding is read as the proposal it is: soft talk never signs a deal.
    commitment = "soft" if wording.proposes else row["commitment"]
    kind = deal_kind(row["type"], sentence, rules)
    mw, mw_role = _figure(sentence, _number(row.get("mw")), figures.megawatts, rules, xrules)
    usd, usd_role = _figure(sentence, _number(row.get("usd")), figures.money, rules, xrules)
    return Fact(
        ticker=row["ticker"], document_id=int(row["document_id"]), start=int(row.get("start") or 0),
        type=row["type"], family=family, day=date.fromisoformat(str(row["published_at"])[:10]),
        url=row.get("url") or "", sentence=sentence, commitment=commitment, direction=row["direction"],
        kind=kind, event=deal_event(commitment, sentence, rules), kind_named=kind != rules.default_kind[row["type"]],
        bare=commitment == "binding" and wording.bare,
        proposal_worded=wording.names_proposal,
        counterparty=counterparty, site=site_name(sentence, rules),
        mw=mw, mw_role=mw_role, usd=usd, usd_role=usd_role,
        term_years=_number(row.get("term_years")),
        withheld=tuple(name for name in ("mw", "usd", "term_years") if row.get(name) == WITHHELD),
        parties=tuple(parties), power_use=power_use(sentence, rules) if family == "power" else "",
        refers_back=any_match(rules.refers_back, sentence),
        prospect=any_match(rules.prospects, sentence),
        series=financing_series(sentence, rules) if family == "financing" else None,
        deliveries=delivery_dates(sentence, rules) if family in ("compute", "power") else (),
    )


def delivery_dates(sentence: str, rules: LedgerRules) -> tuple[str, ...]:
    """The dates a sentence gives for delivering capacity, as written ("Q4 of 2025", "the middle of 2026")."""
    found = [" ".join(match.group(1).split()) for cue in rules.delivery_date for match in cue.finditer(sentence)]
    return tuple(dict.fromkeys(found))


def financing_series(sentence: str, rules: LedgerRules) -> str | None:
    """The maturity year of the notes a sentence is about; None when it names none or is about other notes."""
    if any_match(rules.other_instrument, sentence):
        return None
    for cue in rules.financing_series:
        if match := cue.search(sentence):
            return next((g for g in match.groups() if g), None)
    return None


def deal_kind(type_: str, sentence: str, rules: LedgerRules) -> str:
    for kind, cues in rules.kinds[type_]:
        if any_match(cues, sentence):
            return kind
    return rules.default_kind[type_]


def deal_event(commitment: str, sentence: str, rules: LedgerRules) -> str:
    """The first event whose cue matches; a soft sentence only ever proposes (or reports a setback)."""
    for event, cues in rules.events.items():
        if commitment == "soft" and event not in ("terminated", "delayed"):
            continue
        for cue in cues:
            match = cue.search(sentence)
            if match and not (event in ("delivered", "under_construction") and _planned(event, sentence, match, rules)):
                return event
    return "signed" if commitment == "binding" else "proposed"


class _Wording(NamedTuple):
    """How a sentence words its commitment, each cue read once."""

    names_proposal: bool  # names a bid, an LOI, an MOU or a term sheet
    proposes: bool  # what it commits to is a proposal
    bare: bool  # a short list item with no verb of commitment ("40 MW facility in Kapuskasing")


def _wording(sentence: str, rules: LedgerRules) -> _Wording:
    """"Signed a non-binding letter of intent" or a stalking horse bid proposes, and so does a sentence that names
    a proposal (an LOI, a bid) and commits to nothing else; "Following the LOI of June, IREN signed a contract"
    and "the lease replaces the term sheet" are signed, as is whatever says definitive or executed."""
    terms = any_match(rules.proposal_terms, sentence)
    nouns = any_match(rules.proposal_nouns, sentence)
    commits = any_match(rules.commit_verbs, sentence)
    proposes = (terms or (nouns and not commits)) and not any_match(rules.definitive_terms, sentence)
    return _Wording(terms or nouns, proposes, len(sentence.split()) <= rules.bare_max_words and not commits)


def _planned(event: str, sentence: str, cue: re.Match[str], rules: LedgerRules) -> bool:
    """A delivery or start of works named as a plan: "is expected to be energized" (the 30 characters before
    the cue); for a delivery, also "energization targeting April 2026" (right after it)."""
    return (any_match(rules.future, sentence[max(0, cue.start() - 30): cue.start()])
            or (event == "delivered" and any_match(rules.future_after, sentence[cue.end(): cue.end() + 40])))


Finder = Callable[[str, Rules], list[figures.Figure]]


def _figure(sentence: str, value: float | None, find: Finder, rules: LedgerRules,
            xrules: Rules) -> tuple[float | None, Role]:
    """The disclosure's figure and its role; a larger total the same sentence states wins ("an additional
    $333 million, increasing the total backstop to $1.73 billion" holds the total)."""
    if value is None:
        return None, "stated"
    found = find(sentence, xrules)
    totals = [f.value for f in found if f.value > value and figure_role(sentence, f, rules) == "total"]
    if totals:
        return max(totals), "total"
    own = [f for f in found if abs(f.value - value) <= 1e-6 * max(1.0, value)]
    return value, figure_role(sentence, own[0], rules) if own else "stated"


def figure_role(sentence: str, figure: figures.Figure, rules: LedgerRules) -> Role:
    """Whether the figure is the deal's total, an increment, upside, a restated old figure, or just stated."""
    before = sentence[max(0, figure.start - 90): figure.start]
    after = sentence[figure.end: figure.end + 40]
    if any_match(rules.upside_before, before) or any_match(rules.upside_after, after):
        return "upside"
    if any_match(rules.restated_before, before):
        return "restated"
    if any_match(rules.total_before, before):
        return "total"
    if any_match(rules.increment_before, before) or any_match(rules.increment_after, after):
        return "increment"
    return "stated"


def site_name(sentence: str, rules: LedgerRules) -> str | None:
    """The first proper name the sentence gives a site or campus, leading generic words dropped."""
    for pattern in rules.sites:
        for match in pattern.finditer(sentence):
            words = match.group("site").split()
            while words and words[0] in rules.not_sites:
                words.pop(0)
            if words and not words[0].isdigit() and not all(w in rules.not_sites for w in words):
                name = " ".join(words)
                return rules.site_aliases.get(name.lower(), name)
    return None


def normalise_party(name: str | None, rules: LedgerRules) -> str | None:
    if not name:
        return None
    plain = re.sub(r"[,.]?\s+(?:Inc|LLC|Ltd|Corp|Corporation|L\.P|B\.V|plc)\.?$", "", name.strip())
    return rules.party_aliases.get(name.lower()) or rules.party_aliases.get(plain.lower()) or plain


def named_parties(sentence: str, xrules: Rules, rules: LedgerRules) -> list[str]:
    """Every listed counterparty the sentence names, in order of appearance, as normalised names."""
    own = {normalise_party(name, rules) or "" for name in own_names(sentence, rules)}
    found: list[tuple[int, int, str]] = []  # longest names first (the rules' order): a shorter one inside is skipped
    for name in xrules.counterparties:
        for match in re.finditer(rf"\b{re.escape(name)}\b", sentence):
            if not any(match.start() >= start and match.end() <= end for start, end, _ in found):
                found.append((match.start(), match.end(), name))
    names = []
    for _, _, name in sorted(found):
        party = normalise_party(name, rules)
        if party and party not in own and party not in names:
            names.append(party)
    return names


def own_names(sentence: str, rules: LedgerRules) -> set[str]:
    """Names the sentence gives the company's own subsidiaries and vehicles."""
    return {m.group("name").rstrip(",.") for p in rules.own_subsidiary for m in p.finditer(sentence)}


def power_use(sentence: str, rules: LedgerRules) -> str:
    """ai (said outright), mining, ai_weak ("data center": miners say it too) or unspecified."""
    if any_match(rules.power_ai, sentence):
        return "ai"
    if any_match(rules.power_mining, sentence):
        return "mining"
    if any_match(rules.power_ai_weak, sentence):
        return "ai_weak"
    return "unspecified"


def distress_event(sentence: str, rules: LedgerRules) -> str | None:
    """The distress event a sentence states as fact ("substantial doubt … going concern"), or None.

    A cue inside a hypothetical or negated clause ("could result in a default", "does not raise
    substantial doubt") is a risk factor, not an event.
    """
    for name, cues in rules.distress.items():
        for cue in cues:
            match = cue.search(sentence)
            if match and not any_match(rules.hypothetical, sentence[max(0, match.start() - 60): match.start()]):
                return name
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
