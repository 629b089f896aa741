"""Online market data: the ``[market]`` sources fetched through the shared HTTP client.

Each source is one URL giving one series in one format (``monitor.market.series``). It is fetched
with the client every job shares (per-host rate limit, timeouts, body cap, retries), conditionally
(ETag / Last-Modified kept per URL, saved only after the observations are stored), and parsed; then
what every source of the update gave is upserted in one transaction: a day already stored with the
same value is left alone, a revised one replaced.

Stock and ETF closes need no list of URLs: ``px:TICKER`` is derived for every watched company
and every ``price_symbols`` entry from ``price_url_template`` (Stooq by default), unless
``[[market.sources]]`` names that series itself. Stooq's file for today carries the running
price while the market is open; the next poll after the close replaces it with the close.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from monitor import store
from monitor.config import MarketSettings, MarketSource
from monitor.fetch.conditional import conditional_get, remember
from monitor.fetch.http import HttpClient, Response
from monitor.market.result import MarketPoll
from monitor.market.series import Observation, parse, price_series


def market_source_name(series: str) -> str:
    return f"market:{series}"


def market_sources(settings: MarketSettings, tickers: Iterable[str]) -> list[MarketSource]:
    """The configured sources, then a price source per ticker (watched companies + price_symbols)."""
    sources = list(settings.sources)
    listed = {source.series for source in sources}
    if settings.price_url_template:
        for ticker in [*tickers, *settings.price_symbols]:
            series = price_series(ticker)
            if series in listed:
                continue
            listed.add(series)
            url = settings.price_url_template.format(symbol=ticker.strip().lower())
            sources.append(MarketSource(series=series, url=url, format=settings.price_format))
    return sources


@dataclass
class Download:
    """One source fetched and parsed, not yet stored."""

    source: MarketSource
    response: Response
    observations: list[Observation]
    requests: int

    @property
    def name(self) -> str:
        return market_source_name(self.source.series)


def download_series(client: HttpClient, db: sqlite_utils.Database, source: MarketSource) -> Download:
    """Fetch (conditionally) and parse one source; a failure raises, naming the URL and cause."""
    before = client.requests_sent
    response = conditional_get(client, db, source.url)
    observations = [] if response.not_modified else parse(source.format, response.content, source.url)
    return Download(source, response, observations, client.requests_sent - before)


def save_downloads(db: sqlite_utils.Database, downloads: list[Download]) -> list[MarketPoll]:
    """Store every download of one market update in one transaction.

    The score stage reads the market between transactions; storing the update whole means a market
    event is never scored against today's BTC beside yesterday's spread from the same update, so the
    scores of a market day do not depend on when the score job happened to run.
    """
    results = []
    with store.transaction(db, "market update"):
        for download in downloads:
            result = MarketPoll(download.name, requests=download.requests)
            if not download.response.not_modified:
                result.observations = len(download.observations)
                result.changed = store.save_observations(db, download.source.series, download.observations,
                                                         download.source.url)
                remember(db, download.source.url, download.response)
            store.record_poll(db, result.source, ok=True, added=result.changed)
            results.append(result)
    return results
