"""Backtest: what the monitor would have said, and when, beside the share price.

Replays a company's stored disclosures and market data in time order through
the same engine as the live stage, in memory (nothing is written), and returns
one row per event that changed the scorecard or raised an alert.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date

import sqlite_utils

from monitor import store
from monitor.ledger.rules import LedgerRules
from monitor.score.stage import Context, load_inputs, pillars_of, replay
from monitor.score.thesis import Thesis


@dataclass(frozen=True)
class TimelineRow:
    day: date
    event: str
    backing_before: float
    backing_after: float
    changes: dict[str, tuple[float, float]]  # pillar → (before, after)
    alerts: list[str] = field(default_factory=list)  # "severity direction: title"
    price: float | None = None  # the share's close on the day or the last trading day before it


def backtest(db: sqlite_utils.Database, thesis: Thesis, ticker: str, start: date | None = None,
             end: date | None = None, rules: LedgerRules | None = None) -> list[TimelineRow]:
    """The timeline of what the monitor would have said: scorecard moves, deal events of the stored ledger
    (signed, expanded, delayed …, with their numbers), distress (with ``rules``), levels crossed."""
    ticker = ticker.upper()
    evidence, market, ledger = load_inputs(db, thesis, ticker)
    prices = [(date.fromisoformat(d), v) for d, v in store.market_series(db, f"px:{ticker}")]
    seen: set[str] = set()
    own = {p.id for p in pillars_of(thesis, ticker).pillars}  # the BTC drawdown moves every week: not news
    rows = []
    for outcome in replay(thesis, ticker, evidence, market, start, end, Context(ledger, rules)):
        fresh = [a for a in outcome.alerts if a.key not in seen]
        seen.update(a.key for a in fresh)
        before, after = outcome.before.values(), outcome.after.values()
        if not fresh and all(before[pid] == after[pid] for pid in own):
            continue
        rows.append(TimelineRow(
            day=outcome.event.day, event=outcome.event.name,
            backing_before=outcome.before.backing, backing_after=outcome.after.backing,
            changes={pid: (before[pid], after[pid]) for pid in after if before[pid] != after[pid]},
            alerts=[f"{a.severity} {a.direction}: {a.title}" for a in fresh],
            price=_close_on(prices, outcome.event.day),
        ))
    return rows


def _close_on(prices: list[tuple[date, float]], day: date) -> float | None:
    i = bisect_right(prices, (day, float("inf")))
    return prices[i - 1][1] if i else None
