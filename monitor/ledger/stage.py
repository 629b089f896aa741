"""The ledger stage: keep each company's stored ledger in step with its disclosures.

A company's ledger is rebuilt whole when its disclosures or the ledger rules change (a fingerprint
of both is stored with it), in one transaction that replaces its deals, deal events and unlinked
mentions, so a kill leaves the old ledger or the new one, never a mix. Rebuilding rather than
appending is what lets a back-dated document take its place in time. ``load_ledger`` reads the
stored events back, without re-reading any sentence, so ``monitor ledger --as-of`` stays fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any, Iterable

import sqlite_utils

from monitor import store
from monitor.extract.rules import Rules, load_rules
from monitor.ledger.build import Deal, DealEvent, Ledger, Unlinked, build
from monitor.ledger.reading import read_fact
from monitor.ledger.rules import FAMILY_OF_TYPE, LedgerRules, load_ledger_rules


@dataclass(frozen=True)
class LedgerReader:
    """The two rule sets a ledger build reads with, loaded once per pass."""

    rules: LedgerRules
    figures: Rules  # the extraction rules' figure parsers and known counterparties

    @classmethod
    def from_dir(cls, rules_dir: Path) -> "LedgerReader":
        return cls(load_ledger_rules(rules_dir), load_rules(rules_dir))

    @property
    def version(self) -> str:
        return f"{self.rules.version}:{self.figures.version}"


def update_ledgers(db: sqlite_utils.Database, tickers: Iterable[str], reader: LedgerReader) -> list[str]:
    """Rebuild the ledgers whose disclosures or rules changed; returns the tickers rebuilt."""
    rebuilt = []
    for ticker in tickers:
        mark = _fingerprint(db, ticker, reader)
        stored = db.execute("select fingerprint from ledger_state where ticker = ?", [ticker]).fetchone()
        if stored and stored[0] == mark:
            continue
        ledger = build_from_store(db, ticker, reader)
        save_ledger(db, ledger, mark)
        rebuilt.append(ticker)
    return rebuilt


def build_from_store(db: sqlite_utils.Database, ticker: str, reader: LedgerReader) -> Ledger:
    types = tuple(FAMILY_OF_TYPE)
    rows = [r for r in store.list_disclosures(db, ticker) if r["type"] in types]
    return build(ticker, [f for r in rows if (f := read_fact(r, reader.rules, reader.figures))])


def _fingerprint(db: sqlite_utils.Database, ticker: str, reader: LedgerReader) -> str:
    count, last, top = db.execute(
        "select count(*), max(extracted_at), max(id) from disclosures where ticker = ?", [ticker]).fetchone()
    return f"{reader.version}:{count}:{last}:{top}"


def save_ledger(db: sqlite_utils.Database, ledger: Ledger, fingerprint: str) -> None:
    ticker = ledger.ticker
    with store.transaction(db, f"ledger of {ticker}"):
        for table in ("deals", "deal_events", "ledger_unlinked"):
            db.execute(f"delete from {table} where ticker = ?", [ticker])
        latest = {d.key: d for d in ledger.as_of()}
        db.conn.executemany(
            "insert into deals (key, ticker, family, kind, counterparty, sites, status, mw, usd, term_years, "
            "annual_usd, option_mw, guarantor, backstop_usd, power_use, first_day, signed_day, last_day, sources) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_deal_row(d) for d in latest.values()])
        db.conn.executemany(
            "insert into deal_events (key, deal_key, ticker, day, document_id, event, mw_delta, usd_delta, deal, "
            "cites) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.key, e.deal.key, ticker, e.day.isoformat(), e.document_id, e.event, e.mw_delta, e.usd_delta,
              json.dumps(_by_reference(e.deal.to_dict())), json.dumps([_ref(c) for c in e.cites]))
             for e in ledger.events])
        db.conn.executemany(
            "insert into ledger_unlinked (ticker, document_id, day, family, reason, candidates, cites) "
            "values (?, ?, ?, ?, ?, ?, ?)",
            [(ticker, u.document_id, u.day.isoformat(), u.family, u.reason, json.dumps(u.candidates),
              json.dumps([_ref(c) for c in u.cites])) for u in ledger.unlinked])
        db.execute("insert into ledger_state (ticker, fingerprint, built_at) values (?, ?, ?) "
                   "on conflict (ticker) do update set fingerprint = excluded.fingerprint, built_at = excluded.built_at",
                   [ticker, fingerprint, store.utcnow()])


def _ref(cite: dict[str, str]) -> str:
    """A citation stored as its disclosure's stable id: the sentence, URL and date live in ``disclosures``
    once, not again in every event that cites them (they were most of the ledger's bytes)."""
    return cite.get("disclosure", "")


def _by_reference(deal: dict[str, Any]) -> dict[str, Any]:
    return {**deal, "sources": [[name, _ref(cite)] for name, cite in deal["sources"]]}


def _citations(db: sqlite_utils.Database, ticker: str) -> dict[str, dict[str, str]]:
    """Every citable disclosure of a company by stable id, as Fact.cite() writes it."""
    rows = db.execute('select document_id, "start", type, sentence, url, published_at from disclosures '
                      f"where ticker = ? and type in ({', '.join('?' * len(FAMILY_OF_TYPE))})",
                      [ticker, *FAMILY_OF_TYPE]).fetchall()
    return {f"{d}:{s or 0}:{t}": {"sentence": sentence, "url": url or "", "date": str(day or "")[:10],
                                  "disclosure": f"{d}:{s or 0}:{t}"}
            for d, s, t, sentence, url, day in rows}


def _cited(citations: dict[str, dict[str, str]], ref: str) -> dict[str, str]:
    return citations.get(ref) or {"sentence": "", "url": "", "date": "", "disclosure": ref}


def _deal_row(deal: Deal) -> tuple[Any, ...]:
    data = deal.to_dict()
    return (deal.key, deal.ticker, deal.family, deal.kind, deal.counterparty, json.dumps(list(deal.sites)),
            deal.status, deal.mw, deal.usd, deal.term_years, deal.annual_usd, deal.option_mw, deal.guarantor,
            deal.backstop_usd, deal.power_use, data["first_day"], data["signed_day"], data["last_day"],
            json.dumps(data["sources"]))


def load_ledger(db: sqlite_utils.Database, ticker: str) -> Ledger:
    """The stored ledger of a company, events in time order, citations read back from its disclosures."""
    ledger = Ledger(ticker, revenue=store.revenue_facts(db, ticker))
    citations = _citations(db, ticker)
    for row in db.execute("select day, document_id, event, mw_delta, usd_delta, deal, cites from deal_events "
                          "where ticker = ? order by id", [ticker]):
        deal = json.loads(row[5])
        deal["sources"] = [[name, _cited(citations, ref)] for name, ref in deal["sources"]]
        ledger.events.append(DealEvent(deal_from_dict(deal), date.fromisoformat(row[0]), row[1], row[2], row[3],
                                       row[4], tuple(_cited(citations, ref) for ref in json.loads(row[6]))))
    for row in db.execute("select document_id, day, family, reason, candidates, cites from ledger_unlinked "
                          "where ticker = ? order by id", [ticker]):
        ledger.unlinked.append(Unlinked(ticker, row[0], date.fromisoformat(row[1]), row[2], row[3],
                                        tuple(json.loads(row[4])), tuple(_cited(citations, r)
                                                                         for r in json.loads(row[5]))))
    return ledger


_DEAL_FIELDS = {f.name for f in fields(Deal)}


def deal_from_dict(data: dict[str, Any]) -> Deal:
    values = {k: v for k, v in data.items() if k in _DEAL_FIELDS}
    for name in ("first_day", "signed_day", "last_day"):
        values[name] = date.fromisoformat(values[name]) if values.get(name) else None
    values["sites"] = tuple(values.get("sites") or ())
    values["withheld"] = tuple(values.get("withheld") or ())
    values["deliveries"] = tuple(values.get("deliveries") or ())
    values["sources"] = tuple((name, cite) for name, cite in values.get("sources") or ())
    return Deal(**values)
