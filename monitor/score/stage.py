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
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Callable, Iterator

import sqlite_utils

from monitor import store
from monitor.filing_items import label_citations
from monitor.ledger.build import Ledger
from monitor.ledger.rules import LedgerRules
from monitor.ledger.stage import LedgerReader, load_ledger, update_ledgers
from monitor.score.deal_alerts import deal_alerts, distress_alerts, lapse_alerts, late_note, unit_alerts
from monitor.score.engine import (
    AlertDecision,
    Evidence,
    Scorecard,
    Series,
    compute,
    decide,
)
from monitor.score.thesis import Thesis

log = logging.getLogger(__name__)


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


def load_inputs(db: sqlite_utils.Database, thesis: Thesis, ticker: str) -> tuple[list[Evidence], Series, Ledger]:
    """What ``compute`` reads for a company: its evidence, the thesis' market series, its stored ledger."""
    return load_evidence(db, ticker), load_market(db, thesis), load_ledger(db, ticker)


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


MARKET_WIDE = "*"  # the ticker of thesis-wide market alerts (a BTC drawdown is one event, not nine)
HISTORY_DAYS = 7  # alerts about events older than this are stored and shown, not pushed (a backfill)
MATERIAL = 1.0  # a scorecard row is kept when a pillar moves at least this much (or a deal event happened)


@dataclass(frozen=True)
class Context:
    """What a company's pass knows besides its evidence: its ledger, the reading rules, and whether the
    event is late (dated before what the store already scored)."""

    ledger: Ledger | None = None
    rules: LedgerRules | None = None
    latest_day: date | None = None


def step(thesis: Thesis, ticker: str, event: Event, evidence: list[Evidence], market: Series,
         levels: dict[str, int], context: Context = Context()) -> Step:
    ledger = context.ledger
    if event.document_id is not None:
        new = [e for e in evidence if e.document_id == event.document_id]
        others = [e for e in evidence if e.document_id != event.document_id]
        without = ledger.without(event.document_id) if ledger is not None else None
        before = compute(thesis, ticker, event.day, others, market, ledger=without)
        after = compute(thesis, ticker, event.day, evidence, market, ledger=ledger)
    else:
        new = []
        before = compute(thesis, ticker, event.day, evidence, market, market_as_of=event.previous_market_day,
                         ledger=ledger)
        after = compute(thesis, ticker, event.day, evidence, market, ledger=ledger)
    history = [e for e in evidence if e.day <= event.day and e.document_id != event.document_id]
    late = event.document_id is not None and context.latest_day is not None and event.day < context.latest_day
    # A late document must not re-arm or cross levels for later dates: it decides against a copy.
    alerts = decide(pillars_of(thesis, ticker), before, after, event.name, new, history,
                    dict(levels) if late else levels)
    if event.document_id is None and ticker != MARKET_WIDE:
        alerts = []  # market moves alert once per thesis (MARKET_WIDE), not once per company
    alerts += _document_alerts(thesis, ticker, event, new, context)
    alerts += unit_alerts(thesis, ticker, event.name, before, after, dict(levels) if late else levels)
    if late:
        alerts = late_note(thesis.id, ticker, event.day.isoformat(), event.document_id or 0, alerts,
                           context.latest_day.isoformat() if context.latest_day else "")
    if context.ledger is not None:
        alerts += lapse_alerts(thesis.id, ticker, event.day, context.ledger, thesis.alerts.lapse_days)
    return Step(event, before, after, alerts)


def pillars_of(thesis: Thesis, ticker: str) -> Thesis:
    """The pillars a ticker's alerts read: a pillar made only of market terms (BTC drawdown) is one event for
    every company, so it alerts on the thesis-wide pass (MARKET_WIDE) and nowhere else."""
    market_only = market_only_pillars(thesis)
    keep = [p for p in thesis.pillars if (p.id in market_only) == (ticker == MARKET_WIDE)]
    return thesis.model_copy(update={"pillars": keep})


def market_only_pillars(thesis: Thesis) -> set[str]:
    """Pillars made only of market terms: the same for every company."""
    return {p.id for p in thesis.pillars if p.market and not p.evidence and not p.quantities}


def _document_alerts(thesis: Thesis, ticker: str, event: Event, new: list[Evidence],
                     context: Context) -> list[AlertDecision]:
    if event.document_id is None:
        return []
    day = event.day.isoformat()
    found = []
    if context.ledger is not None:
        found += deal_alerts(thesis, ticker, day, context.ledger.events_of(event.document_id))
    if context.rules is not None:
        found += distress_alerts(thesis.id, ticker, day, event.document_id, new, context.rules)
    return found


def replay(thesis: Thesis, ticker: str, evidence: list[Evidence], market: Series,
           start: date | None = None, end: date | None = None, context: Context = Context()) -> Iterator[Step]:
    levels: dict[str, int] = {}
    for event in events(thesis, evidence, market, start, end):
        yield step(thesis, ticker, event, evidence, market, levels, context)


# Called for each new alert to push, inside the transaction that stores it (the pipeline queues it in the
# outbox there, so an alert and its delivery rows are written together): store, alert id, alert, now.
AlertSink = Callable[[sqlite_utils.Database, int, AlertDecision, str], None]


def score_pending(db: sqlite_utils.Database, theses: list[Thesis], on_alert: AlertSink | None = None,
                  reader: LedgerReader | None = None, notify_history: bool = False,
                  now: datetime | None = None) -> ScoreResult:
    """Process every event not yet scored, for every thesis and company, after bringing ledgers up to date.

    Each new alert goes to ``on_alert`` in the transaction that stores it, unless it is history
    (``is_history``) and ``notify_history`` is off: a first run or a backfill is stored and shown, not pushed.
    """
    result = ScoreResult()
    now = now or datetime.now(UTC)
    tickers = sorted({t for thesis in theses for t in thesis.companies})
    if reader is not None:
        update_ledgers(db, tickers, reader)
    for thesis in theses:
        market = load_market(db, thesis)
        days = trading_days(market)
        for ticker in [*thesis.companies, MARKET_WIDE]:
            evidence = load_evidence(db, ticker) if ticker != MARKET_WIDE else []
            done = {row[0]: row[1] for row in db.execute(
                "select event, day from score_events where thesis = ? and ticker = ?", [thesis.id, ticker])}
            last_market = max((e[4:] for e in done if e.startswith("mkt:")), default=None)
            levels = {row[0]: row[1] for row in db.execute(
                "select pillar, level from alert_levels where thesis = ? and ticker = ?", [thesis.id, ticker])}
            context = Context(load_ledger(db, ticker) if reader and ticker != MARKET_WIDE else None,
                              reader.rules if reader else None,
                              max((date.fromisoformat(d) for d in done.values() if d), default=None))
            started = watch_started(db, thesis.id, ticker, now)
            fetched = dict(db.execute("select id, fetched_at from documents where ticker = ?", [ticker]).fetchall())
            saved = _last_values(db, thesis.id, ticker)
            for event in events(thesis, evidence, market, market_days=days):
                if event.name in done or (event.name.startswith("mkt:") and last_market
                                          and event.day.isoformat() <= last_market):
                    continue
                if ticker == MARKET_WIDE and event.document_id is not None:
                    continue
                outcome = step(thesis, ticker, event, evidence, market, levels, context)
                quiet = not notify_history and is_history(event, started, fetched, now)
                written, saved = _save(db, thesis, ticker, outcome, None if quiet else on_alert, levels, saved,
                                       latest=context.latest_day is None or event.day >= context.latest_day)
                if context.latest_day is None or event.day > context.latest_day:
                    context = replace(context, latest_day=event.day)
                result.events += 1
                result.scorecards += int(outcome.changed)
                result.alerts += written
    return result


def watch_started(db: sqlite_utils.Database, thesis: str, ticker: str, now: datetime) -> str:
    """When this store began scoring the company under the thesis (recorded on the first pass)."""
    with store.transaction(db, "watch start"):
        db.execute("insert or ignore into watch_started (thesis, ticker, started_at) values (?, ?, ?)",
                   [thesis, ticker, now.isoformat(timespec="seconds")])
        return str(db.execute("select started_at from watch_started where thesis = ? and ticker = ?",
                              [thesis, ticker]).fetchone()[0])


def is_history(event: Event, started: str, fetched: dict[int, str], now: datetime) -> bool:
    """An event is history, stored and shown but not pushed, when its document was stored before scoring of
    the company began (a first run: the whole backfill), when a market event is dated before that, or when
    it is older than HISTORY_DAYS (a back-dated or late-found document). Decided from stored times, so a
    pass killed and resumed decides as the uninterrupted one did."""
    if (now.date() - event.day).days > HISTORY_DAYS:
        return True
    if event.document_id is not None:
        return str(fetched.get(event.document_id) or "") <= started
    return event.day.isoformat() <= started[:10]


def _last_values(db: sqlite_utils.Database, thesis: str, ticker: str) -> dict[str, float]:
    # The row written last (processing order), not the latest day: a back-dated event's row is the one the
    # next event is compared with, whether the pass ran through or was killed and resumed.
    row = db.execute("select pillars from scorecards where thesis = ? and ticker = ? order by id desc limit 1",
                     [thesis, ticker]).fetchone()
    return json.loads(row[0]) if row else {}


def _material(thesis: Thesis, before: dict[str, float], after: dict[str, float]) -> bool:
    """A company pillar moved by MATERIAL points or more. Market-only pillars (the BTC drawdown) are the same
    for every company and move every week: they are kept once, in market_observations, not per company."""
    market = market_only_pillars(thesis)
    return any(abs(after.get(k, 0.0) - before.get(k, 0.0)) >= MATERIAL for k in after.keys() | before.keys()
               if k not in market)


def _save(db: sqlite_utils.Database, thesis: Thesis, ticker: str, outcome: Step, on_alert: AlertSink | None,
          levels: dict[str, int], saved: dict[str, float], latest: bool) -> tuple[int, dict[str, float]]:
    """One event's rows in one transaction: the scorecard values when they moved materially (history
    keeps values only; the latest explanation is kept apart), the alerts and their outbox rows, the
    levels, and the event's done mark. Returns the alerts written and the values now stored."""
    now = store.utcnow()
    values = outcome.after.values()
    with store.transaction(db, "scorecards"):
        # Plain SQL for the per-event rows: sqlite-utils' insert/upsert re-read the table's schema on every
        # call, a fifth of the stage's time when a backfill brings hundreds of events per company.
        if ticker != MARKET_WIDE and outcome.changed and (_material(thesis, saved, values) or outcome.alerts):
            db.execute(
                "insert or ignore into scorecards (thesis, ticker, as_of, event, backing, pillars, created_at) "
                "values (?, ?, ?, ?, ?, ?, ?)",
                [thesis.id, ticker, outcome.event.day.isoformat(), outcome.event.name, outcome.after.backing,
                 json.dumps(values), now],
            )
            saved = values
        if ticker != MARKET_WIDE and latest and outcome.changed:
            db.execute(
                "insert or replace into scorecard_latest (thesis, ticker, as_of, event, backing, pillars, explanation) "
                "values (?, ?, ?, ?, ?, ?, ?)",
                [thesis.id, ticker, outcome.event.day.isoformat(), outcome.event.name, outcome.after.backing,
                 json.dumps(values), json.dumps(outcome.after.to_dict()["pillars"])])
        written = 0
        for alert in outcome.alerts:
            row = alert.to_dict()
            row.update(reasons=json.dumps(row["reasons"]), changes=json.dumps(row["changes"]),
                       evidence=json.dumps(label_citations(db, ticker, row["evidence"])), created_at=now)
            before = db.execute("select count(*) from alerts where key = ?", [alert.key]).fetchone()[0]
            if not before:
                alert_id = db["alerts"].insert(row).last_pk
                if on_alert is not None:
                    on_alert(db, alert_id, alert, now)
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
    return written, saved


def list_alerts(db: sqlite_utils.Database, ticker: str | None = None) -> list[dict[str, Any]]:
    where, params = ("where ticker = ?", [ticker.upper()]) if ticker else ("", [])
    rows = [dict(r) for r in db.query(f"select * from alerts {where} order by as_of, id", params)]
    for row in rows:
        for column in ("reasons", "changes", "evidence"):
            row[column] = json.loads(row[column])
    return rows


def scorecard_history(db: sqlite_utils.Database, thesis: str, ticker: str) -> list[dict[str, Any]]:
    rows = db.query("select as_of, event, backing, pillars from scorecards where thesis = ? and ticker = ? "
                    "order by as_of, id", [thesis, ticker.upper()])
    return [{**dict(r), "pillars": json.loads(r["pillars"])} for r in rows]
