"""``rules/ledger.toml`` → compiled LedgerRules: how the ledger reads a disclosure.

Kept apart from the extraction rules on purpose: the ledger's reading (deal kind, event, figure roles,
sites, parties, distress) runs on stored disclosures, so editing it rebuilds ledgers without
re-extracting documents or retraining the reader. A broken pattern is a ConfigError naming the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.extract.rules import Patterns, _Loader, read_rules_file

FILE = "ledger.toml"
FAMILY_OF_TYPE = {"contracted_compute": "compute", "partnership": "partnership", "power": "power",
                  "financing": "financing"}
EVENT_ORDER = ("terminated", "delayed", "delivered", "under_construction", "expanded", "amended")
DISTRESS_EVENTS = ("going_concern", "chapter_11", "default", "restructuring_termination", "lease_termination",
                   "covenant_breach", "delisting")


@dataclass(frozen=True)
class LedgerRules:
    version: str
    kinds: dict[str, tuple[tuple[str, Patterns], ...]]  # per disclosure type: (kind, cues) in order
    default_kind: dict[str, str]
    events: dict[str, Patterns]
    future: Patterns  # a delivery or start of works that is only planned (read before its cue)
    future_after: Patterns  # the same said after the cue ("energization targeting April 2026")
    refers_back: Patterns  # "its original transaction", "under the original agreement"
    proposal_terms: Patterns  # "signed a non-binding LOI", "stalking horse bid": a proposal whatever the reader said
    proposal_nouns: Patterns  # LOI, MOU, term sheet, bid: a proposal when the sentence commits to nothing else
    definitive_terms: Patterns  # "definitive", "executed", "closed": the proposal terms name what was replaced
    bare_max_words: int  # a binding list item this short, with no verb of commitment, follows its document
    commit_verbs: Patterns
    upside_before: Patterns
    upside_after: Patterns
    total_before: Patterns
    increment_before: Patterns
    increment_after: Patterns
    restated_before: Patterns
    sites: Patterns
    not_sites: frozenset[str]
    site_aliases: dict[str, str]
    own_subsidiary: Patterns
    prospects: Patterns
    delivery_date: Patterns  # "ready for service in Q4 of 2025": when capacity is (to be) delivered (group 1)
    financing_series: Patterns  # "notes due 2031": the issue a financing sentence is about (group 1: year)
    other_instrument: Patterns  # a sentence about other notes (existing, repurchased): no series of this deal
    not_raising: Patterns  # bitcoin sales, debt converted: no capital raised, no financing in the ledger
    raising_terms: Patterns  # ... unless the sentence raises money too ("and raised $300 million through its ATM")
    party_aliases: dict[str, str]
    power_ai: Patterns
    power_ai_weak: Patterns
    power_mining: Patterns
    distress: dict[str, Patterns]
    hypothetical: Patterns


def load_ledger_rules(rules_dir: Path) -> LedgerRules:
    data, raw = read_rules_file(rules_dir / FILE)
    loader = _Loader(rules_dir, {FILE: raw})
    kinds: dict[str, tuple[tuple[str, Patterns], ...]] = {}
    defaults: dict[str, str] = {}
    for type_ in FAMILY_OF_TYPE:
        table = loader.table(FILE, f"kinds.{type_}")
        kinds[type_] = tuple((kind, loader.patterns(FILE, f"kinds.{type_}.{kind}"))
                             for kind in table if kind != "default")
        defaults[type_] = str(loader.get(FILE, f"kinds.{type_}.default"))
    return LedgerRules(
        version=hashlib.sha256(data).hexdigest()[:16],
        kinds=kinds,
        default_kind=defaults,
        events={name: loader.patterns(FILE, f"events.{name}") for name in EVENT_ORDER},
        future=loader.patterns(FILE, "events.future"),
        future_after=loader.patterns(FILE, "events.future_after"),
        refers_back=loader.patterns(FILE, "events.refers_back"),
        proposal_terms=loader.patterns(FILE, "events.proposal_terms"),
        proposal_nouns=loader.patterns(FILE, "events.proposal_nouns"),
        definitive_terms=loader.patterns(FILE, "events.definitive_terms"),
        bare_max_words=int(loader.get(FILE, "events.bare_max_words")),
        commit_verbs=loader.patterns(FILE, "events.commit_verbs"),
        upside_before=loader.patterns(FILE, "figures.upside_before"),
        upside_after=loader.patterns(FILE, "figures.upside_after"),
        total_before=loader.patterns(FILE, "figures.total_before"),
        increment_before=loader.patterns(FILE, "figures.increment_before"),
        increment_after=loader.patterns(FILE, "figures.increment_after"),
        restated_before=loader.patterns(FILE, "figures.restated_before"),
        sites=loader.patterns(FILE, "sites.patterns", case_sensitive=True),
        not_sites=frozenset(loader.strings(FILE, "sites.not_sites")),
        site_aliases=_names(loader, "sites.aliases"),
        own_subsidiary=loader.patterns(FILE, "parties.own_subsidiary", case_sensitive=True),
        prospects=loader.patterns(FILE, "parties.prospects"),
        delivery_date=loader.patterns(FILE, "delivery.date"),
        financing_series=loader.patterns(FILE, "financing.series"),
        other_instrument=loader.patterns(FILE, "financing.other_instrument"),
        not_raising=loader.patterns(FILE, "financing.not_raising"),
        raising_terms=loader.patterns(FILE, "financing.raising_terms"),
        party_aliases=_names(loader, "parties.aliases"),
        power_ai=loader.patterns(FILE, "power.ai"),
        power_ai_weak=loader.patterns(FILE, "power.ai_weak"),
        power_mining=loader.patterns(FILE, "power.mining"),
        distress={name: loader.patterns(FILE, f"distress.{name}") for name in DISTRESS_EVENTS},
        hypothetical=loader.patterns(FILE, "distress.hypothetical"),
    )


def _names(loader: _Loader, key: str) -> dict[str, str]:
    table: dict[str, Any] = loader.table(FILE, key)
    for name, value in table.items():
        if not isinstance(value, str):
            raise loader.fail(FILE, f"{key}.{name}", f"{value!r} is not a name")
    return {name.lower(): value for name, value in table.items()}
