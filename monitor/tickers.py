"""Ticker → CIK from SEC's company_tickers.json (bundled copy, refreshed when online)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from monitor.config import Config, NewsroomSource
from monitor.errors import ConfigError, ParseError

TICKERS_URL_PATH = "/files/company_tickers.json"
TICKERS_SOURCE = "edgar:tickers"  # the daily refresh, as ``sources`` and health name it


@dataclass(frozen=True)
class WatchedCompany:
    ticker: str
    cik: int
    name: str
    feeds: tuple[str, ...]
    newsroom: NewsroomSource | None = None  # the list page read where the company has no feed


def parse_company_tickers(data: bytes, source: str) -> dict[str, tuple[int, str]]:
    """{TICKER: (cik, title)} from SEC's ``{"0": {"cik_str", "ticker", "title"}, ...}``."""
    try:
        payload = json.loads(data)
        return {
            str(row["ticker"]).upper(): (int(row["cik_str"]), str(row.get("title", "")))
            for row in payload.values()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ParseError(source, f"not a company_tickers.json: {type(exc).__name__}: {exc}") from exc


def cached_tickers_path(config: Config) -> Path:
    return config.path(config.monitor.db).parent / "cache" / "company_tickers.json"


def load_ticker_map(config: Config) -> dict[str, tuple[int, str]]:
    """The freshest ticker map we have: the refreshed cache, else the bundled copy."""
    for path in (cached_tickers_path(config), config.path(config.sec.tickers_file)):
        if path.exists():
            return parse_company_tickers(path.read_bytes(), str(path))
    raise ConfigError(f"sec.tickers_file: {config.path(config.sec.tickers_file)} not found")


def save_ticker_map(config: Config, data: bytes, source: str) -> None:
    """Validate, then atomically replace the cached map (a kill never leaves half a file).

    A refresh that parses but is empty, or lacks a watched ticker, is refused (ParseError naming
    ``source``) and the last good map stays: cached, it would make the next start fail on a
    config that is fine.
    """
    ticker_map = parse_company_tickers(data, source)
    if not ticker_map:
        raise ParseError(source, "company_tickers.json is empty; the last good ticker map is kept")
    missing = [c.ticker for c in config.companies if c.cik is None and c.ticker not in ticker_map]
    if missing:
        raise ParseError(source, f"company_tickers.json lacks watched tickers {', '.join(missing)}; "
                                 "the last good ticker map is kept")
    path = cached_tickers_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def watched_companies(config: Config) -> list[WatchedCompany]:
    """Every configured company with its CIK; an unknown ticker is a start-up error."""
    ticker_map = load_ticker_map(config)
    companies = []
    for i, company in enumerate(config.companies):
        known = ticker_map.get(company.ticker)
        cik = company.cik or (known[0] if known else None)
        if cik is None:
            raise ConfigError(
                f"companies.{i}.ticker: {company.ticker} is not in SEC's company_tickers.json; "
                "set companies.cik explicitly"
            )
        companies.append(WatchedCompany(company.ticker, cik, known[1] if known else "", tuple(company.feeds),
                                        company.newsroom))
    return companies
