"""The market lens over the store: a company's BTC exposure, the peers side by side, the event study of
stored disclosures, and the informational *market view* pillar.

The thesis says MARA is priced as a levered BTC proxy and that a credible pivot should make it less
BTC-driven. Here that is measured: beta, correlation and R² of the stock's daily returns on the BTC
factor (``lens.py`` says how the calendars are aligned), their rolling values beside the thesis's
contracted compute pillar on one timeline, the hedge ratio, and the abnormal returns around
disclosures. The figures are informational: they never enter the cash-flow backing figure.

Nothing here looks ahead: a report "as of" a day uses prices and disclosures up to that day only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import pandas as pd
import sqlite_utils

from monitor import store
from monitor.config import MarketLensSettings
from monitor.errors import NoData
from monitor.market.lens import (
    MIN_RETURNS,
    BetaStats,
    EventResult,
    aligned_returns,
    beta_stats,
    beta_trend,
    bucket_table,
    event_study,
    hedge_ratio,
    rolling_beta,
)
from monitor.score.thesis import Thesis

FACTOR_SERIES = {"btc": "btc_usd", "ibit": "px:IBIT"}
FACTOR_LABEL = {"btc": "BTC", "ibit": "IBIT"}


def price_series(ticker: str) -> str:
    return f"px:{ticker.strip().upper()}"


def load_prices(db: sqlite_utils.Database, series: str, end: date | None = None) -> list[tuple[str, float]]:
    """A stored daily series up to ``end``; NoData naming the series when the store has none."""
    rows = store.market_series(db, series, end=end)
    if not rows:
        raise NoData(f"no price series {series} in the store" + (f" up to {end}" if end else "")
                     + " (the market job or `monitor run --offline` stores it)")
    return rows


def company_returns(db: sqlite_utils.Database, ticker: str, factor: str = "ibit",
                    end: date | None = None) -> pd.DataFrame:
    """The stock's and the factor's aligned daily returns (``lens.aligned_returns``) up to ``end``."""
    stock_series, factor_series = price_series(ticker), FACTOR_SERIES[factor]
    returns = aligned_returns(load_prices(db, stock_series, end), load_prices(db, factor_series, end))
    if len(returns) < MIN_RETURNS:
        raise NoData(f"{stock_series} and {factor_series} share {len(returns)} daily returns"
                     + (f" up to {end}" if end else "") + f"; at least {MIN_RETURNS} are needed")
    return returns


def company_events(db: sqlite_utils.Database, ticker: str, returns: pd.DataFrame,
                   settings: MarketLensSettings, end: date | None = None) -> list[EventResult]:
    """The event study of a company's stored disclosures (published up to ``end``)."""
    disclosures = []
    for row in store.list_disclosures(db, ticker):
        if not row["published_at"]:
            continue
        day = date.fromisoformat(str(row["published_at"])[:10])
        if end is None or day <= end:
            tag = (row["type"], row["commitment"] or "", row["direction"] or "")
            disclosures.append((day, row["document_id"], tag))
    return event_study(returns, ticker.upper(), disclosures, estimation_days=settings.estimation_days,
                       min_estimation_days=settings.min_estimation_days,
                       gap_days=settings.estimation_gap_days, car_days=settings.car_days)


def thesis_for(theses: Sequence[Thesis], ticker: str) -> Thesis | None:
    return next((t for t in theses if ticker.upper() in t.companies), None)


def pillar_values(db: sqlite_utils.Database, thesis: Thesis | None, ticker: str, days: Iterable[date],
                  pillar: str) -> dict[date, tuple[float | None, float | None]]:
    """(pillar value, cash-flow backing) of the thesis's scorecard as it stood on each day."""
    from monitor.score.engine import compute
    from monitor.score.stage import load_inputs

    days = list(days)
    if thesis is None:
        return {day: (None, None) for day in days}
    evidence, market, ledger = load_inputs(db, thesis, ticker.upper())
    values = {}
    for day in days:
        card = compute(thesis, ticker.upper(), day, evidence, market, ledger=ledger)
        found = card.pillars.get(pillar)
        values[day] = (found.value if found else None, card.backing)
    return values


def _window_stats(returns: pd.DataFrame, window: int) -> BetaStats:
    return beta_stats(returns.iloc[-window:])


def _both_factors(db: sqlite_utils.Database, ticker: str, end: date | None) -> dict[str, Any]:
    """Full-window beta statistics against each factor, or the reason there are none."""
    found: dict[str, Any] = {}
    for name in FACTOR_SERIES:
        try:
            found[name] = beta_stats(company_returns(db, ticker, name, end)).to_dict()
        except NoData as exc:
            found[name] = {"error": str(exc)}
    return found


def market_report(db: sqlite_utils.Database, ticker: str, theses: Sequence[Thesis],
                  settings: MarketLensSettings, factor: str | None = None,
                  windows: Sequence[int] | None = None) -> dict[str, Any]:
    """Everything ``monitor market TICKER`` shows, as plain data.

    NoData when the company has no price series (or too few returns against the factor).
    """
    ticker = ticker.upper()
    factor = factor or settings.factor
    windows = list(windows or settings.windows)
    returns = company_returns(db, ticker, factor)
    label = FACTOR_LABEL[factor]
    full = beta_stats(returns)
    latest = {w: _window_stats(returns, w) for w in windows}
    rolling = {w: rolling_beta(returns, w) for w in windows}
    thesis = thesis_for(theses, ticker)

    month_ends = list(returns.index.to_series().groupby(returns.index.to_period("M")).max())
    days = [ts.date() for ts in month_ends]
    pillars = pillar_values(db, thesis, ticker, days, settings.compute_pillar)
    timeline = []
    for ts, day in zip(month_ends, days, strict=True):
        row: dict[str, Any] = {"day": day.isoformat()}
        for w in windows:
            point = rolling[w].loc[ts] if ts in rolling[w].index else None
            row[f"beta_{w}"] = None if point is None else float(point["beta"])
            row[f"r2_{w}"] = None if point is None else float(point["r2"])
        row[settings.compute_pillar], row["backing"] = pillars[day]
        timeline.append(row)

    events = company_events(db, ticker, returns, settings)
    return {
        "ticker": ticker, "series": price_series(ticker), "factor": factor,
        "factor_series": FACTOR_SERIES[factor],
        "thesis": thesis.id if thesis else None, "compute_pillar": settings.compute_pillar,
        "full": full.to_dict(),
        "full_by_factor": _both_factors(db, ticker, None),
        "latest": [{"window": w, **latest[w].to_dict()} for w in windows],
        "hedge": {
            "latest": {"window": windows[0], **hedge_ratio(latest[windows[0]], ticker, label).to_dict()},
            "full": hedge_ratio(full, ticker, label).to_dict(),
        },
        "trend": beta_trend(returns, windows[0]).to_dict(),
        "timeline": timeline,
        "event_study": {
            "settings": _event_settings(settings, factor),
            "events": [e.to_dict() for e in events],
            "buckets": bucket_table(events, settings.min_events),
        },
        "market_view": market_view(db, ticker, settings=settings, factor=factor, window=windows[0]),
    }


def _event_settings(settings: MarketLensSettings, factor: str) -> dict[str, Any]:
    return {"factor": factor, "estimation_days": settings.estimation_days,
            "min_estimation_days": settings.min_estimation_days, "gap_days": settings.estimation_gap_days,
            "car_days": settings.car_days, "min_events": settings.min_events}


def market_view(db: sqlite_utils.Database, ticker: str, as_of: date | None = None, *,
                settings: MarketLensSettings | None = None, factor: str | None = None,
                window: int | None = None) -> dict[str, Any]:
    """The informational market-view pillar of a company as of a day (default: its last price day).

    ``value`` is the idiosyncratic share of the stock's daily variance over the latest ``window``
    returns, in percent (100 × (1 − R²) on the BTC factor): 0 is a pure BTC proxy, 100 moves on
    its own. It is meant to be shown beside the scorecard and never mixed into cash-flow backing.
    NoData when there is no price series (or too few returns) up to ``as_of``.
    """
    settings = settings or MarketLensSettings()
    factor = factor or settings.factor
    window = window or settings.windows[0]
    ticker = ticker.upper()
    returns = company_returns(db, ticker, factor, as_of)
    latest, full = _window_stats(returns, window), beta_stats(returns)
    trend = beta_trend(returns, window)
    hedge = hedge_ratio(latest, ticker, FACTOR_LABEL[factor])
    value = round(100 * latest.idiosyncratic_share, 1)
    return {
        "pillar": "market_view", "name": "Market view: BTC exposure (informational)", "kind": "informational",
        "ticker": ticker, "as_of": latest.end.isoformat(), "factor": factor, "window": window, "value": value,
        "beta": latest.beta, "stderr_beta": latest.stderr_beta, "correlation": latest.correlation,
        "r2": latest.r2,
        "idiosyncratic_share": latest.idiosyncratic_share, "beta_full": full.beta, "r2_full": full.r2,
        "full_start": full.start.isoformat(), "trend": trend.direction, "hedge": hedge.to_dict(),
        "why": [
            (f"{window}-day beta to {FACTOR_LABEL[factor]} {latest.beta:.2f} ± {latest.stderr_beta:.2f}, "
             f"R² {latest.r2:.2f}: {value:.0f}% of daily variance is not BTC "
             f"({latest.start} → {latest.end})"),
            (f"full window since {full.start}: beta {full.beta:.2f}, R² {full.r2:.2f}; "
             f"halves {trend.describe()}"),
            f"hedge: {hedge.describe()}",
        ],
    }


def peers_table(db: sqlite_utils.Database, tickers: Sequence[str], theses: Sequence[Thesis],
                settings: MarketLensSettings, factor: str | None = None,
                window: int | None = None) -> dict[str, Any]:
    """Every company side by side, least BTC-driven (lowest latest R²) first, and the pooled event study.

    A company without a price series (or with too few returns) is listed with the reason and no
    figures; the others are computed as usual.
    """
    factor = factor or settings.factor
    window = window or settings.windows[0]
    label = FACTOR_LABEL[factor]
    rows, events = [], []
    for ticker in dict.fromkeys(t.upper() for t in tickers):
        try:
            returns = company_returns(db, ticker, factor)
            full, latest = beta_stats(returns), _window_stats(returns, window)
            trend = beta_trend(returns, window)
        except NoData as exc:
            rows.append({"ticker": ticker, "status": str(exc)})
            continue
        by_factor = _both_factors(db, ticker, None)
        last_day = returns.index[-1].date()
        thesis = thesis_for(theses, ticker)
        values = pillar_values(db, thesis, ticker, [last_day], settings.compute_pillar)
        compute_value, backing = values[last_day]
        found = company_events(db, ticker, returns, settings)
        events += found
        rows.append({
            "ticker": ticker, "status": "ok", "n": full.n, "start": full.start.isoformat(),
            "end": full.end.isoformat(),
            "beta_ibit": by_factor["ibit"].get("beta"), "beta_btc": by_factor["btc"].get("beta"),
            "r2_ibit": by_factor["ibit"].get("r2"), "r2_btc": by_factor["btc"].get("r2"),
            "beta": full.beta, "r2": full.r2, "idiosyncratic_share": full.idiosyncratic_share,
            "window": window, "latest_beta": latest.beta, "latest_stderr": latest.stderr_beta,
            "latest_r2": latest.r2, "trend": trend.to_dict(), "trend_text": trend.describe(),
            "hedge": hedge_ratio(latest, ticker, label).to_dict(),
            "thesis": thesis.id if thesis else None, settings.compute_pillar: compute_value,
            "backing": backing,
            "events": sum(1 for e in found if not e.skipped),
        })
    rows.sort(key=lambda r: (r["status"] != "ok", r.get("latest_r2") or 0.0, r["ticker"]))
    return {
        "factor": factor, "factor_series": FACTOR_SERIES[factor], "window": window,
        "compute_pillar": settings.compute_pillar, "companies": rows,
        "event_study": {"settings": _event_settings(settings, factor),
                        "events": [e.to_dict() for e in events],
                        "buckets": bucket_table(events, settings.min_events)},
    }

