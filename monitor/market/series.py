"""Parsers for daily market series: bytes of a known format → ``list[Observation]``.

Every parser is pure (bytes in, observations out), returns one observation per day sorted by day,
and turns anything it cannot read into a ``ParseError`` naming the source (URL or file) and the
line (or JSON element) at fault, so a changed or broken download is one clear log line.

Formats, by the name used in ``[[market.sources]]`` and ``data/samples/market/manifest.toml``:

``yahoo_csv``
    Yahoo Finance history, ``Date,Close`` or ``Date,Open,High,Low,Close,Adj Close,Volume``: the
    ``Close`` column. Yahoo writes ``null`` for a day it has no price for; such rows are skipped.
``stooq_csv``
    Stooq's daily download (``https://stooq.com/q/d/l/?s=mara.us&i=d``),
    ``Date,Open,High,Low,Close,Volume``: the ``Close`` column. Stooq answers an unknown symbol or
    an exhausted daily quota with a one-line text ("No data", "Exceeded the daily hits limit"),
    which fails here as a header without a Date column.
``yfinance_csv``
    Files written from yfinance frames, ``symbol,date,open,high,low,close,volume,...``: the
    ``close`` column; one symbol per file.
``fred_csv``
    FRED, in its classic ``DATE,SERIESID`` form and in the current fredgraph.csv form
    ``observation_date,SERIESID``. FRED marks a day without a value (a holiday) with ``.`` (classic)
    or an empty cell (fredgraph); such rows are skipped, never read as zero.
``coingecko_csv``
    CoinGecko's historical-data export, ``snapped_at,price,market_cap,total_volume`` with stamps
    like ``2024-01-02 00:00:00 UTC``.
``coingecko_json``
    CoinGecko's API ``/coins/{id}/market_chart?...&interval=daily``,
    ``{"prices": [[unix_ms, price], ...]}``.
``monthly_ohlc_csv``
    Monthly ``date,open,high,low,close``: the ``close``, stored under the date given (the row's
    label, the first of the month), as the file states it. The close is the month's last value, so
    a reader who wants "the value known on day X" must not take a month's row before the month ends.

Why CoinGecko's day moves back one: BTC trades around the clock and a daily "close" is the price
at the end of a UTC day (Yahoo's BTC-USD ``Close`` of day D is its 23:59 UTC price). CoinGecko's
daily point stamped ``D 00:00:00 UTC`` is the price at the first instant of day D, i.e. the close
of day D-1, so it is stored under D-1. Checked on the bundled files: on the 91 days both cover,
CoinGecko's ``D 00:00 UTC`` price is within a median 0.05% of Yahoo's close for D-1, against about
1.3% for Yahoo's close of D itself. A CoinGecko point not stamped at midnight UTC (the API's last
point is the live price at request time) is not a close and is dropped; the next day's midnight
point brings that day's close.

If a payload lists the same day twice, the later row wins.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

from monitor.errors import ParseError

MarketFormat = Literal[
    "yahoo_csv", "stooq_csv", "yfinance_csv", "fred_csv", "coingecko_csv", "coingecko_json", "monthly_ohlc_csv"
]

# btc_usd, hy_oas, ust_10y and other lower-case names; px:TICKER for a stock or ETF close.
_SERIES_NAME = re.compile(r"[a-z][a-z0-9_]*|px:[A-Z0-9][A-Z0-9.\-]{0,9}")
_COINGECKO_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) UTC")
_DAY_MS = 86_400_000


@dataclass(frozen=True, order=True, slots=True)
class Observation:
    day: date
    value: float


def check_series_name(name: str) -> str:
    """``name`` if it is a series name (see the package docstring), else ValueError."""
    if not _SERIES_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a series name (btc_usd, hy_oas, ust_10y, another lower-case name, or px:TICKER)"
        )
    return name


def price_series(ticker: str) -> str:
    """The series of a stock's or ETF's daily close: ``px:MARA``."""
    return check_series_name(f"px:{ticker.strip().upper()}")


# --- helpers ------------------------------------------------------------------------------------


def _text(data: bytes, source: str) -> str:
    if not data.strip():
        raise ParseError(source, "empty payload")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(source, f"not UTF-8 text (byte {exc.start})") from None
    return text


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _csv_rows(data: bytes, source: str, date_names: tuple[str, ...], value_name: str | None,
              what: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {date, value, and every other column by lower-case name}) per data row.

    The header must have one of ``date_names`` and ``value_name`` (any second column when None).
    Blank lines are skipped; a row with another number of fields than the header is a ParseError.
    """
    text = _text(data, source)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] = []
    try:
        for header in reader:
            if any(cell.strip() for cell in header):
                break
        names = [cell.strip().lower() for cell in header]
        line = reader.line_num
        date_name = next((name for name in date_names if name in names), None)
        if value_name is None and date_name is not None and len(names) == 2:
            value_name = names[1 - names.index(date_name)]
        if date_name is None or value_name is None or value_name not in names:
            wanted = f"{date_names[0]} and {value_name or 'one value'} columns"
            raise ParseError(source, f"line {line}: not a {what} (header {_short(','.join(header))!r} "
                                     f"lacks the {wanted})")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise ParseError(source, f"line {reader.line_num}: {len(row)} fields where the header has "
                                         f"{len(names)}: {_short(','.join(row))!r}")
            cells = {name: cell.strip() for name, cell in zip(names, row)}
            cells["__date__"], cells["__value__"] = cells[date_name], cells[value_name]
            yield reader.line_num, cells
    except csv.Error as exc:
        raise ParseError(source, f"line {reader.line_num}: malformed CSV: {exc}") from None


def _day(text: str, source: str, line: int, allow_time: bool = False) -> date:
    head, rest = text[:10], text[10:]
    if len(head) == 10 and (not rest or (allow_time and rest[0] in " T")):
        try:
            return date.fromisoformat(head)
        except ValueError:
            pass
    raise ParseError(source, f"line {line}: {_short(text)!r} is not a YYYY-MM-DD date")


def _number(text: str, source: str, line: int, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ParseError(source, f"line {line}: {_short(text)!r} is not a number") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise ParseError(source, f"line {line}: {text!r} is not a {'price' if positive else 'finite value'}")
    return value


def _one_per_day(pairs: Iterator[tuple[date, float]], source: str) -> list[Observation]:
    by_day: dict[date, float] = {}
    for day, value in pairs:
        by_day[day] = value  # a repeated day: the later row wins
    if not by_day:
        raise ParseError(source, "no observations in the payload")
    return [Observation(day, by_day[day]) for day in sorted(by_day)]


def _close_csv(data: bytes, source: str, date_names: tuple[str, ...], what: str, gaps: frozenset[str],
               positive: bool, allow_time: bool = False) -> list[Observation]:
    def pairs() -> Iterator[tuple[date, float]]:
        for line, cells in _csv_rows(data, source, date_names, "close", what):
            day = _day(cells["__date__"], source, line, allow_time)
            if cells["__value__"] in gaps:
                continue
            yield day, _number(cells["__value__"], source, line, positive)

    return _one_per_day(pairs(), source)


# --- the formats --------------------------------------------------------------------------------


def parse_yahoo_csv(data: bytes, source: str) -> list[Observation]:
    return _close_csv(data, source, ("date",), "Yahoo Finance CSV", frozenset({"null"}), positive=True)


def parse_stooq_csv(data: bytes, source: str) -> list[Observation]:
    return _close_csv(data, source, ("date",), "Stooq daily CSV", frozenset(), positive=True)


def parse_monthly_ohlc_csv(data: bytes, source: str) -> list[Observation]:
    """A month's close, dated on the month's LAST day (the file labels it by the first).

    Dating the close on the 1st would let a scorecard or backtest "as of" the 10th
    see the value of the 31st: look-ahead. On the last day it is known.
    """
    rows = _close_csv(data, source, ("date",), "date,open,high,low,close CSV", frozenset(), positive=False)
    return [Observation(_month_end(obs.day), obs.value) for obs in rows]


def _month_end(day: date) -> date:
    following = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def parse_yfinance_csv(data: bytes, source: str) -> list[Observation]:
    symbols: set[str] = set()

    def pairs() -> Iterator[tuple[date, float]]:
        for line, cells in _csv_rows(data, source, ("date",), "close", "yfinance CSV (symbol,date,...,close)"):
            symbols.add(cells.get("symbol", ""))
            if len(symbols) > 1:
                raise ParseError(source, f"line {line}: more than one symbol in the file ({sorted(symbols)})")
            yield _day(cells["__date__"], source, line, allow_time=True), \
                _number(cells["__value__"], source, line, positive=True)

    return _one_per_day(pairs(), source)


def parse_fred_csv(data: bytes, source: str) -> list[Observation]:
    def pairs() -> Iterator[tuple[date, float]]:
        for line, cells in _csv_rows(data, source, ("date", "observation_date"), None, "FRED CSV"):
            day = _day(cells["__date__"], source, line)
            if cells["__value__"] in (".", ""):
                continue  # FRED's missing value: a holiday, not a zero
            yield day, _number(cells["__value__"], source, line, positive=False)

    return _one_per_day(pairs(), source)


def parse_coingecko_csv(data: bytes, source: str) -> list[Observation]:
    def pairs() -> Iterator[tuple[date, float]]:
        for line, cells in _csv_rows(data, source, ("snapped_at",), "price", "CoinGecko CSV export"):
            match = _COINGECKO_STAMP.fullmatch(cells["__date__"])
            if not match:
                raise ParseError(source, f"line {line}: {_short(cells['__date__'])!r} is not a "
                                         "'YYYY-MM-DD HH:MM:SS UTC' stamp")
            day = _day(match.group(1), source, line)
            price = _number(cells["__value__"], source, line, positive=True)
            if match.group(2) == "00:00:00":
                yield day - timedelta(days=1), price  # the price at D 00:00 UTC closes day D-1

    return _one_per_day(pairs(), source)


def parse_coingecko_json(data: bytes, source: str) -> list[Observation]:
    try:
        payload: Any = json.loads(_text(data, source))
    except json.JSONDecodeError as exc:
        raise ParseError(source, f"line {exc.lineno}: not JSON: {exc.msg} (column {exc.colno})") from None
    prices = payload.get("prices") if isinstance(payload, dict) else None
    if not isinstance(prices, list):
        raise ParseError(source, f"no \"prices\" list in the CoinGecko answer: {_short(json.dumps(payload))!r}")

    def pairs() -> Iterator[tuple[date, float]]:
        for index, point in enumerate(prices):
            where = f"prices[{index}]"
            if not (isinstance(point, list) and len(point) == 2
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in point)):
                raise ParseError(source, f"{where}: {_short(json.dumps(point))!r} is not [unix_ms, price]")
            stamp, price = point
            if not math.isfinite(price) or price <= 0 or not math.isfinite(stamp):
                raise ParseError(source, f"{where}: {_short(json.dumps(point))!r} is not [unix_ms, price]")
            if int(stamp) != stamp or int(stamp) % _DAY_MS:
                continue  # not a midnight snapshot (the live price at request time): not a close
            try:
                day = datetime.fromtimestamp(int(stamp) / 1000, UTC).date()
            except (OverflowError, OSError, ValueError):
                raise ParseError(source, f"{where}: {stamp!r} is not a time in milliseconds") from None
            yield day - timedelta(days=1), float(price)  # the price at D 00:00 UTC closes day D-1

    return _one_per_day(pairs(), source)


Parser = Callable[[bytes, str], list[Observation]]

FORMATS: dict[str, Parser] = {
    "yahoo_csv": parse_yahoo_csv,
    "stooq_csv": parse_stooq_csv,
    "yfinance_csv": parse_yfinance_csv,
    "fred_csv": parse_fred_csv,
    "coingecko_csv": parse_coingecko_csv,
    "coingecko_json": parse_coingecko_json,
    "monthly_ohlc_csv": parse_monthly_ohlc_csv,
}
assert set(FORMATS) == set(get_args(MarketFormat))


def parse(fmt: str, data: bytes, source: str) -> list[Observation]:
    """Observations of ``data`` in format ``fmt``; ``source`` (URL or file) names it in errors."""
    try:
        parser = FORMATS[fmt]
    except KeyError:
        raise ParseError(source, f"unknown market data format {fmt!r} (known: {', '.join(FORMATS)})") from None
    return parser(data, source)
