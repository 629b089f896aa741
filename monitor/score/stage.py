"""The score stage: turn new disclosures and market data into scorecard history and alerts.

Events are processed in time order per thesis and company: each document with
disclosures is one event, and market data is one event per ``market_step_days``.
For an event the scorecard is computed before and after it *as of the event's
day*, so the difference is the event's own effect, whatever order documents
arrived in. The scorecard row, the alerts and the event's "done" mark are
written in one transaction; alert keys are unique, so replaying anything can
never raise an alert twice.
"""

from __future__ import annotations

import json
import logging
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterator

import sqlite_utils

from monitor import store
from monitor.notify.outbox import enqueue, ensure_outbox_schema
from monitor.score.engine import (
    AlertDecision,
    Evidence,
    Scorecard,
    Series,
    alert_key,
    compute,
    decide,
    lapsed,
)
from monitor.score.thesis import Thesis

log = logging.getLogger(__name__)


STABLE_LAPSE_KEYS = 1  # the store's user_version from which lapse alerts carry Evidence.stable_id keys


def ensure_score_schema(db: sqlite_utils.Database) -> None:
    ensure_outbox_schema(db)
    with store.transaction(db, "score schema"):
        if "scorecards" not in db.table_names():
            db["scorecards"].create(
                {"id": int, "thesis": str, "ticker": str, "as_of": str, "event": str, "backing": float,
                 "pillars": str, "explanation": str, "created_at": str},
                pk="id",
            )
            db["scorecards"].create_index(["thesis", "ticker", "event"], unique=True)
            db["scorecards"].create_index(["ticker", "as_of"])
        if "alerts" not in db.table_names():
            db["alerts"].create(
                {"id": int, "key": str, "thesis": str, "ticker": str, "pillar": str, "event": str, "as_of": str,
                 "severity": str, "direction": str, "title": str, "before": float, "after": float,
                 "reasons": str, "changes": str, "evidence": str, "created_at": str},
                pk="id",
            )
            db["alerts"].create_index(["key"], unique=True)
            db["alerts"].create_index(["ticker", "as_of"])
        if "alert_levels" not in db.table_names():
            db["alert_levels"].create({"thesis": str, "ticker": str, "pillar": str, "level": int},
                                      pk=("thesis", "ticker", "pillar"))
        if "score_events" not in db.table_names():
            db["score_events"].create(
                {"thesis": str, "ticker": str, "event": str, "day": str, "processed_at": str},
                pk=("thesis", "ticker", "event"),
            )
        # Once per store (user_version is committed with the re-key), not on every scoring pass.
        if db.execute("pragma user_version").fetchone()[0] < STABLE_LAPSE_KEYS:
            _rekey_lapse_alerts(db)
            db.execute(f"pragma user_version = {STABLE_LAPSE_KEYS}")


def _rekey_lapse_alerts(db: sqlite_utils.Database) -> None:
    """Give lapse alerts of older stores (``lapse:<disclosure id>``) today's key, so none is raised again.

    Lapse alerts are now keyed by document, sentence offset and type (``Evidence.stable_id``), which
    survive re-extraction. An old alert is matched to its disclosure by id, or, if the disclosures were
    re-extracted since, by its cited sentence; one that matches nothing keeps its old key.
    """
    old = db.execute("select id, thesis, ticker, event, evidence from alerts "
                     "where event glob 'lapse:[0-9]*' and event not like 'lapse:%:%'").fetchall()
    for alert_id, thesis, ticker, event, evidence in old:
        sentence = next(iter(json.loads(evidence or "[]")), {}).get("sentence", "")
        found = db.execute(
            "select document_id, start, type from disclosures where id = ? and ticker = ? "
            "union all select document_id, start, type from disclosures where ticker = ? and sentence = ? "
            "and commitment = 'soft' limit 1", [int(event[6:]), ticker, ticker, sentence]).fetchone()
        if found is None:
            continue
        new_event = f"lapse:{found[0]}:{found[1] or 0}:{found[2]}"
        key = alert_key(thesis, ticker, new_event)
        if db.execute("select 1 from alerts where key = ?", [key]).fetchone() is None:
            db.execute("update alerts set event = ?, key = ? where id = ?", [new_event, key, alert_id])


@dataclass(frozen=True)
class Event:
    day: date
    name: str  # "doc:<document id>" or "mkt:<day>"
    document_id: int | None = None
    previous_market_day: date | None = None


@dataclass
class Step:
    """One event's effect: the scorecard before and after, and the alerts it raised."""

    event: Event
    before: Scorecard
    after: Scorecard
    alerts: list[AlertDecision]

    @property
    def changed(self) -> bool:
        return self.before.values() != self.after.values()


@dataclass
class ScoreResult:
    events: int = 0
    scorecards: int = 0
    alerts: int = 0
    errors: list[str] = field(default_factory=list)
    aborted: bool = False  # the stage failed as a whole (store, rules, a bug), not one document


def load_inputs(db: sqlite_utils.Database, thesis: Thesis, ticker: str) -> tuple[list[Evidence], Series]:
    return load_evidence(db, ticker), load_market(db, thesis)


def load_evidence(db: sqlite_utils.Database, ticker: str) -> list[Evidence]:
    return [Evidence.from_row(row) for row in store.list_disclosures(db, ticker)]


def load_market(db: sqlite_utils.Database, thesis: Thesis) -> Series:
    """The thesis' market series; they do not depend on the company, so a pass loads them once per thesis."""
    market: Series = {}
    for series in {term.series for pillar in thesis.pillars for term in pillar.market}:
        market[series] = [(date.fromisoformat(day), value) for day, value in store.market_series(db, series)]
    return market


def trading_days(market: Series) -> list[date]:
    """Every day any series has an observation, in order."""
    return sorted({d for observations in market.values() for d, _ in observations})


def events(thesis: Thesis, evidence: list[Evidence], market: Series, start: date | None = None,
           end: date | None = None, market_days: list[date] | None = None) -> list[Event]:
    """Document events, and market events every ``market_step_days`` from the first evidence on.

    ``market_days`` is ``trading_days(market)`` when the caller already has it: a pass over thousands
    of companies shares one market, and sorting its days again per company was most of an idle pass.
    """
    found: dict[int, date] = {}
    for item in evidence:
        found[item.document_id] = min(item.day, found.get(item.document_id, item.day))
    doc_events = [Event(day, f"doc:{doc}", document_id=doc) for doc, day in found.items()]
    if market_days is None:
        market_days = trading_days(market)
    first = min(found.values(), default=market_days[-1] - timedelta(days=365) if market_days else None)
    market_events = []
    previous: date | None = None
    for day in market_days[bisect_left(market_days, first):] if first is not None else []:
        if previous is None or (day - previous).days >= thesis.alerts.market_step_days or day == market_days[-1]:
            market_events.append(Event(day, f"mkt:{day.isoformat()}", previous_market_day=previous or day))
            previous = day
    everything = sorted(doc_events + market_events, key=lambda e: (e.day, e.name.startswith("mkt"), e.name))
    return [e for e in everything if (start is None or e.day >= start) and (end is None or e.day <= end)]


def step(thesis: Thesis, ticker: str, event: Event, evidence: list[Evidence], market: Series,
         levels: dict[str, int]) -> Step:
    if event.document_id is not None:
        new = [e for e in evidence if e.document_id == event.document_id]
        others = [e for e in evidence if e.document_id != event.document_id]
        before = compute(thesis, ticker, event.day, others, market)
        after = compute(thesis, ticker, event.day, evidence, market)
    else:
        new = []
        before = compute(thesis, ticker, event.day, evidence, market, market_as_of=event.previous_market_day)
        after = compute(thesis, ticker, event.day, evidence, market)
    history = [e for e in evidence if e.day <= event.day and e.document_id != event.document_id]
    alerts = decide(thesis, before, after, event.name, new, history, levels)
    alerts += lapsed(thesis, ticker, event.day, [e for e in evidence if e.day <= event.day])
    return Step(event, before, after, alerts)


def replay(thesis: Thesis, ticker: str, evidence: list[Evidence], market: Series,
           start: date | None = None, end: date | None = None) -> Iterator[Step]:
    levels: dict[str, int] = {}
    for event in events(thesis, evidence, market, start, end):
        yield step(thesis, ticker, event, evidence, market, levels)


def score_pending(db: sqlite_utils.Database, theses: list[Thesis], channels: list[str] | None = None) -> ScoreResult:
    """Process every event not yet scored, for every thesis and company.

    Each new alert is queued in the outbox for ``channels`` in the same transaction.
    """
    ensure_score_schema(db)
    result = ScoreResult()
    for thesis in theses:
        market = load_market(db, thesis)
        days = trading_days(market)
        for ticker in thesis.companies:
            evidence = load_evidence(db, ticker)
            done = {row[0] for row in db.execute(
                "select event from score_events where thesis = ? and ticker = ?", [thesis.id, ticker])}
            last_market = max((e[4:] for e in done if e.startswith("mkt:")), default=None)
            levels = {row[0]: row[1] for row in db.execute(
                "select pillar, level from alert_levels where thesis = ? and ticker = ?", [thesis.id, ticker])}
            for event in events(thesis, evidence, market, market_days=days):
                if event.name in done or (event.name.startswith("mkt:") and last_market
                                          and event.day.isoformat() <= last_market):
                    continue
                outcome = step(thesis, ticker, event, evidence, market, levels)
                written = _save(db, thesis, ticker, outcome, channels or [], levels)
                result.events += 1
                result.scorecards += int(outcome.changed)
                result.alerts += written
    return result


def _save(db: sqlite_utils.Database, thesis: Thesis, ticker: str, outcome: Step, channels: list[str],
          levels: dict[str, int]) -> int:
    now = store.utcnow()
    with store.transaction(db, "scorecards"):
        # Plain SQL for the per-event rows: sqlite-utils' insert/upsert re-read the table's schema on every
        # call, a fifth of the stage's time when a backfill brings hundreds of events per company.
        if outcome.changed:
            card = outcome.after.to_dict()
            db.execute(
                "insert or ignore into scorecards (thesis, ticker, as_of, event, backing, pillars, explanation, "
                "created_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [thesis.id, ticker, outcome.event.day.isoformat(), outcome.event.name, outcome.after.backing,
                 json.dumps(outcome.after.values()), json.dumps(card["pillars"]), now],
            )
        written = 0
        for alert in outcome.alerts:
            row = alert.to_dict()
            row.update(reasons=json.dumps(row["reasons"]), changes=json.dumps(row["changes"]),
                       evidence=json.dumps(row["evidence"]), created_at=now)
            before = db.execute("select count(*) from alerts where key = ?", [alert.key]).fetchone()[0]
            if not before:
                alert_id = db["alerts"].insert(row).last_pk
                enqueue(db, alert_id, ticker, channels, now)
                written += 1
        db.conn.executemany(
            "insert into alert_levels (thesis, ticker, pillar, level) values (?, ?, ?, ?) "
            "on conflict (thesis, ticker, pillar) do update set level = excluded.level",
            [(thesis.id, ticker, pillar, level) for pillar, level in levels.items()],
        )
        db.execute(
            "insert or ignore into score_events (thesis, ticker, event, day, processed_at) values (?, ?, ?, ?, ?)",
            [thesis.id, ticker, outcome.event.name, outcome.event.day.isoformat(), now],
        )
    return written


def list_alerts(db: sqlite_utils.Database, ticker: str | None = None) -> list[dict[str, Any]]:
    ensure_score_schema(db)
    where, params = ("where ticker = ?", [ticker.upper()]) if ticker else ("", [])
    rows = [dict(r) for r in db.query(f"select * from alerts {where} order by as_of, id", params)]
    for row in rows:
        for column in ("reasons", "changes", "evidence"):
            row[column] = json.loads(row[column])
    return rows


def scorecard_history(db: sqlite_utils.Database, thesis: str, ticker: str) -> list[dict[str, Any]]:
    ensure_score_schema(db)
    rows = db.query("select as_of, event, backing, pillars from scorecards where thesis = ? and ticker = ? "
                    "order by as_of, id", [thesis, ticker.upper()])
    return [{**dict(r), "pillars": json.loads(r["pillars"])} for r in rows]
