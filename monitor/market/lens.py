"""Market lens: how much of a stock's daily move is BTC, and how the stock trades on disclosures.

Pure functions over price lists and pandas frames (``view.py`` reads the store and the theses).

Returns. Daily *simple* returns, ``close_t / close_(t-1) - 1``. A regression of the stock's simple
return on the factor's simple return gives the hedge directly in dollars: over one day a $1 stock
position makes ``r_stock`` and ``h`` dollars of the factor make ``h * r_factor``, so ``h = -beta``
neutralises the factor exposure. The event study's cumulative abnormal return is the sum of the
daily abnormal simple returns (the usual market-model convention).

Calendar. BTC trades every day; the stocks and IBIT trade on NYSE days. Returns are taken on the
stock's trading days only: both closes are sampled on the days the stock has a close (and the
factor too), and each return runs from the previous such day's close. A Monday return of the stock
(Friday close → Monday close) is therefore paired with BTC's Friday → Monday return, which holds
the weekend's BTC move: that move reaches the stock at Monday's close, and a return pair must span
the same interval or the beta is biased towards zero. A market holiday (2025-01-09) or a missing
price simply makes the next return span the gap, on both sides. ``btc_usd`` is the close of the
UTC day (CoinGecko's ``D 00:00 UTC`` price is stored under D-1), about four hours after the NYSE
close; IBIT closes with the stocks, which is why it is the default factor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from monitor.errors import NoData

Prices = Iterable[tuple[Any, float]]

TRADING_DAYS_PER_MONTH = 21
MIN_RETURNS = 10  # fewer aligned returns than this and no beta is reported


def _prices(points: Prices, name: str) -> pd.Series:
    """(day, close) pairs → a float Series on a sorted DatetimeIndex, without non-positive closes."""
    rows = list(points)
    if not rows:
        return pd.Series(dtype=float, name=name, index=pd.DatetimeIndex([], name="day"))
    days, values = zip(*rows, strict=True)
    index = pd.DatetimeIndex(pd.to_datetime(list(days)), name="day")
    series = pd.Series(np.asarray(values, dtype=float), index=index, name=name)
    series = series[np.isfinite(series) & (series > 0)]
    return series[~series.index.duplicated(keep="last")].sort_index()


def aligned_returns(stock: Prices, factor: Prices) -> pd.DataFrame:
    """Daily simple returns of the stock and the factor over the same intervals.

    Rows are the stock's trading days on which both have a close (the first such day has no return
    and is left out); columns: ``start`` (the day the return runs from), ``stock_close``,
    ``factor_close``, ``stock``, ``factor``. A factor's weekend days never appear as rows: their
    moves are inside the Monday return. See the module docstring.
    """
    closes = pd.concat({"stock_close": _prices(stock, "stock"), "factor_close": _prices(factor, "factor")},
                       axis=1, join="inner")
    previous = closes.shift(1)
    frame = pd.DataFrame({
        "start": closes.index.to_series().shift(1),
        "stock_close": closes["stock_close"],
        "factor_close": closes["factor_close"],
        "stock": closes["stock_close"] / previous["stock_close"] - 1.0,
        "factor": closes["factor_close"] / previous["factor_close"] - 1.0,
    })
    frame.index.name = "day"
    return frame.iloc[1:]


# --- beta ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BetaStats:
    """OLS of the stock's return on the factor's: ``stock = alpha + beta * factor + e``."""

    beta: float
    alpha: float  # daily
    correlation: float
    r2: float
    idiosyncratic_share: float  # 1 - r2: the share of the stock's daily variance BTC does not explain
    n: int  # returns
    stderr_beta: float
    start: date  # the first return runs from this day's close
    end: date  # … and the last one to this day's close

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self).items()}


def beta_stats(returns: pd.DataFrame) -> BetaStats:
    """Beta, alpha, correlation, R² and the standard error of beta (from the residuals, n - 2 dof)."""
    clean = returns.dropna(subset=["stock", "factor"])
    n = len(clean)
    if n < MIN_RETURNS:
        raise NoData(f"{n} aligned daily returns: at least {MIN_RETURNS} are needed for a beta")
    x = clean["factor"].to_numpy(dtype=float)
    y = clean["stock"].to_numpy(dtype=float)
    design = np.column_stack([np.ones(n), x])
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ np.array([alpha, beta])
    ssr = float(residuals @ residuals)
    sxx = float(((x - x.mean()) ** 2).sum())
    sst = float(((y - y.mean()) ** 2).sum())
    if sxx == 0 or sst == 0:
        raise NoData(f"returns from {_day(clean['start'].iloc[0])} to {_day(clean.index[-1])} do not vary")
    r2 = 1.0 - ssr / sst
    return BetaStats(
        beta=float(beta), alpha=float(alpha), correlation=float(np.corrcoef(x, y)[0, 1]), r2=r2,
        idiosyncratic_share=1.0 - r2, n=n, stderr_beta=math.sqrt(ssr / (n - 2) / sxx),
        start=_day(clean["start"].iloc[0]), end=_day(clean.index[-1]),
    )


def rolling_beta(returns: pd.DataFrame, window: int) -> pd.DataFrame:
    """Beta, correlation and R² over each trailing ``window`` of returns, indexed by the window's last day.

    Beta is the rolling covariance over the rolling factor variance (the OLS slope of each window).
    """
    x, y = returns["factor"], returns["stock"]
    corr = y.rolling(window).corr(x)
    beta = y.rolling(window).cov(x) / x.rolling(window).var()
    return pd.DataFrame({"beta": beta, "corr": corr, "r2": corr ** 2}).dropna()


@dataclass(frozen=True)
class BetaTrend:
    """Is the BTC beta falling? The two halves of the sample compared, and the recent rolling slope.

    ``direction`` comes from the halves: "falling" or "rising" when the difference is at least two
    standard errors (``z``), else "flat". ``slope_per_month`` is the least-squares slope of the last
    ``window`` rolling betas, per 21 trading days (descriptive: overlapping windows are not independent).
    """

    first_half: BetaStats
    second_half: BetaStats
    z: float
    direction: str
    slope_per_month: float | None
    window: int

    def to_dict(self) -> dict[str, Any]:
        return {"first_half": self.first_half.to_dict(), "second_half": self.second_half.to_dict(),
                "z": self.z, "direction": self.direction, "slope_per_month": self.slope_per_month,
                "window": self.window}

    def describe(self) -> str:
        return (f"{self.first_half.beta:.2f} → {self.second_half.beta:.2f} {self.direction} "
                f"(z {self.z:+.1f})")


def beta_trend(returns: pd.DataFrame, window: int) -> BetaTrend:
    half = len(returns) // 2
    first, second = beta_stats(returns.iloc[:half]), beta_stats(returns.iloc[half:])
    z = (second.beta - first.beta) / math.hypot(first.stderr_beta, second.stderr_beta)
    direction = "falling" if z <= -2 else "rising" if z >= 2 else "flat"
    recent = rolling_beta(returns, window)["beta"].iloc[-window:]
    slope = None
    if len(recent) >= 2:
        per_day = np.polyfit(np.arange(len(recent), dtype=float), recent.to_numpy(), 1)[0]
        slope = float(per_day) * TRADING_DAYS_PER_MONTH
    return BetaTrend(first, second, float(z), direction, slope, window)


# --- hedge --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HedgeRatio:
    """Factor notional per $1 long the stock that neutralises its factor exposure: ``-beta``.

    Negative means short the factor (``ratio = -1.21``: short $1.21 of IBIT per $1 long MARA).
    The standard error is beta's; ``start``, ``end`` and ``n`` are the window it was estimated on.
    """

    ratio: float
    stderr: float
    n: int
    start: date
    end: date
    stock: str
    factor: str

    def describe(self) -> str:
        side = "short" if self.ratio < 0 else "long"
        return (f"{side} ${abs(self.ratio):.2f} of {self.factor} per $1 long {self.stock} "
                f"(± {self.stderr:.2f}; {self.n} returns {self.start} → {self.end})")

    def to_dict(self) -> dict[str, Any]:
        data = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self).items()}
        return {**data, "text": self.describe()}


def hedge_ratio(stats: BetaStats, stock: str = "stock", factor: str = "factor") -> HedgeRatio:
    return HedgeRatio(-stats.beta, stats.stderr_beta, stats.n, stats.start, stats.end, stock, factor)


# --- event study ------------------------------------------------------------------------------------

Tag = tuple[str, str, str]  # (type, commitment, direction) of a disclosure

# Coarser buckets: name → test on one disclosure's tag. An event enters each bucket one of its
# disclosures matches, so the buckets overlap (a release may announce a lease and a hash-rate update).
COARSE: dict[str, Any] = {
    "contracted compute, binding": lambda t, c, d: t == "contracted_compute" and c == "binding"
                                                   and d != "negative",
    "power or partnership, binding": lambda t, c, d: t in ("power", "partnership") and c == "binding"
                                                     and d != "negative",
    "AI/HPC soft (MOU, LOI, plans)": lambda t, c, d: t in ("contracted_compute", "power", "partnership")
                                                     and c == "soft" and d != "negative",
    "mining or BTC (hash rate, coin)": lambda t, c, d: t in ("mining", "btc_exposure"),
    "financing": lambda t, c, d: t == "financing",
    "setback (any negative)": lambda t, c, d: d == "negative",
}


@dataclass(frozen=True)
class EventResult:
    """One event: a company's disclosures whose reaction falls in one event window.

    ``disclosed`` is the earliest disclosure date of the event (``days`` all of them), ``documents``
    its documents and ``tags`` the (type, commitment, direction) of its disclosures. Without figures,
    ``skipped`` says why.
    """

    ticker: str
    disclosed: date
    documents: tuple[int, ...]
    tags: tuple[Tag, ...]
    event_day: date | None = None
    ar: float | None = None  # abnormal return on the event day
    car: float | None = None  # cumulative abnormal return over days 0..car_days
    alpha: float | None = None  # the market model fitted before the event
    beta: float | None = None
    estimation_n: int = 0
    skipped: str = ""
    days: tuple[date, ...] = ()  # every disclosure date of the event (several when windows overlapped)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(disclosed=self.disclosed.isoformat(), documents=list(self.documents),
                    tags=[tag_name(t) for t in self.tags], days=[d.isoformat() for d in self.days],
                    event_day=self.event_day.isoformat() if self.event_day else None)
        return data


def tag_name(tag: Tag) -> str:
    return "/".join(tag)


def event_day_position(returns: pd.DataFrame, disclosed: date) -> int | str:
    """Row of the event day for a disclosure date, or why there is none.

    The event day is the first trading day on or after the disclosure date whose return covers it
    (a Saturday release reacts in Monday's return, which runs from Friday's close).
    """
    if returns.empty:
        return "no returns"
    day = pd.Timestamp(disclosed)
    position = int(returns.index.searchsorted(day, side="left"))
    if position >= len(returns):
        return f"after the price data (last return {_day(returns.index[-1])})"
    if returns["start"].iloc[position] >= day:
        if position == 0:
            first = f"{_day(returns['start'].iloc[0])} → {_day(returns.index[0])}"
            return f"before the price data (first return {first})"
        return f"no return covers {disclosed}"
    return position


def event_study(returns: pd.DataFrame, ticker: str, disclosures: Iterable[tuple[date, int, Tag]], *,
                estimation_days: int = 120, min_estimation_days: int = 60, gap_days: int = 5,
                car_days: int = 2) -> list[EventResult]:
    """Market-model abnormal returns of a company's disclosures, one event per event window.

    ``disclosures`` are (published day, document id, tag). All the disclosures of a day (every
    document of it) make one event, whose event day is the first trading day covering that date
    (``event_day_position``). Disclosures whose event day falls inside an earlier event's window
    [0, +car_days] join that event (``days`` lists their dates): otherwise the same returns would
    enter a bucket twice and its t-statistic would overstate the evidence. Per event, the market
    model ``stock = alpha + beta * factor`` is fitted by OLS on up to ``estimation_days`` returns
    ending ``gap_days`` trading days before the event day (at least ``min_estimation_days``); the
    abnormal return is ``stock - (alpha + beta * factor)`` on the event day (AR), and summed over
    days 0..car_days (CAR). Dates are days without a time, so a release after the close reacts on
    day +1: the CAR catches it, the day-0 AR does not.
    """
    by_position: dict[int, list[tuple[date, int, Tag]]] = {}
    unplaced: dict[tuple[str, date], list[tuple[date, int, Tag]]] = {}
    for item in disclosures:
        where = event_day_position(returns, item[0])
        if isinstance(where, int):
            by_position.setdefault(where, []).append(item)
        else:
            unplaced.setdefault((where, item[0]), []).append(item)
    clusters: list[tuple[int, list[tuple[date, int, Tag]]]] = []
    for position in sorted(by_position):
        if clusters and position - clusters[-1][0] <= car_days:
            clusters[-1][1].extend(by_position[position])
        else:
            clusters.append((position, list(by_position[position])))

    def base(items: list[tuple[date, int, Tag]]) -> EventResult:
        days = tuple(sorted({d for d, _, _ in items}))
        return EventResult(ticker, days[0], tuple(sorted({doc for _, doc, _ in items})),
                           tuple(sorted({tag for _, _, tag in items})), days=days)

    results = [_skip(base(items), why) for (why, _), items in unplaced.items()]
    for position, items in clusters:
        event = base(items)
        event_day = _day(returns.index[position])
        estimation = returns.iloc[max(0, position - gap_days - estimation_days):max(0, position - gap_days)]
        window = returns.iloc[position:position + car_days + 1]
        if len(estimation) < min_estimation_days:
            results.append(_skip(event, f"{len(estimation)} returns before the event to fit the model "
                                        f"(at least {min_estimation_days} needed)", event_day))
        elif len(window) < car_days + 1:
            results.append(_skip(event, f"{len(window)} of {car_days + 1} event-window returns available",
                                 event_day))
        else:
            model = beta_stats(estimation)
            abnormal = window["stock"].to_numpy() - (model.alpha + model.beta * window["factor"].to_numpy())
            results.append(replace(event, event_day=event_day, ar=float(abnormal[0]),
                                   car=float(abnormal.sum()), alpha=model.alpha, beta=model.beta,
                                   estimation_n=model.n))
    return sorted(results, key=lambda r: (r.disclosed, r.ticker))


def _skip(event: EventResult, why: str, event_day: date | None = None) -> EventResult:
    return replace(event, event_day=event_day, skipped=why)


def event_buckets(result: EventResult) -> set[tuple[str, str]]:
    """(level, bucket) pairs an event enters: each of its (type, commitment, direction), and each
    coarse bucket one of its disclosures matches (the buckets overlap)."""
    buckets = {("fine", tag_name(tag)) for tag in result.tags}
    coarse = {("coarse", name) for name, test in COARSE.items() if any(test(*tag) for tag in result.tags)}
    return buckets | coarse


def bucket_table(results: Sequence[EventResult], min_events: int = 5) -> list[dict[str, Any]]:
    """Per bucket: events, mean AR and CAR, and their t-statistics (mean / (sd / sqrt(n))).

    Every bucket an event entered is listed with its count; with fewer than ``min_events`` events
    its figures are withheld (None) and ``status`` says "too few events (n=…)". Skipped events
    (no prices, too short an estimation window) enter no bucket.
    """
    rows = [{"level": level, "bucket": name, "ar": r.ar, "car": r.car}
            for r in results if not r.skipped for level, name in event_buckets(r)]
    if not rows:
        return []
    grouped = (pd.DataFrame(rows).groupby(["level", "bucket"], sort=True)[["ar", "car"]]
               .agg(["count", "mean", "std"]))
    table = []
    for (level, name), row in grouped.iterrows():
        n = int(row[("ar", "count")])
        entry: dict[str, Any] = {"level": level, "bucket": name, "n": n, "status": "ok", "mean_ar": None,
                                 "t_ar": None, "mean_car": None, "t_car": None}
        if n < min_events:
            entry["status"] = f"too few events (n={n}; at least {min_events} needed)"
        else:
            for column in ("ar", "car"):
                mean, sd = float(row[(column, "mean")]), float(row[(column, "std")])
                entry[f"mean_{column}"] = mean
                entry[f"t_{column}"] = mean / (sd / math.sqrt(n)) if sd > 0 else None
        table.append(entry)
    table.sort(key=lambda e: (e["level"] != "coarse", -e["n"], e["bucket"]))
    return table


def _day(value: Any) -> date:
    return pd.Timestamp(value).date()
