"""Online market data: the ``[market]`` sources fetched through the shared HTTP client.

Each source is one URL giving one series in one format (``monitor.market.series``). It is fetched
with the client every job shares (per-host rate limit, timeouts, body cap, retries), conditionally
(ETag / Last-Modified kept per URL, saved only after the observations are stored), parsed, and
upserted: a day already stored with the same value is left alone, a revised one replaced.

Stock and ETF closes need no list of URLs: ``px:TICKER`` is derived for every watched company
and every ``price_symbols`` entry from ``price_url_template`` (Stooq by default), unless
``[[market.sources]]`` names that series itself. Stooq's file for today carries the running
price while the market is open; the next poll after the close replaces it with the close.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlite_utils

from monitor import store
from monitor.config import MarketSettings, MarketSource
from monitor.fetch.conditional import conditional_get, remember
from monitor.fetch.http import HttpClient
from monitor.market.result import MarketPoll
from monitor.market.series import parse, price_series


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


def fetch_series(client: HttpClient, db: sqlite_utils.Database, source: MarketSource) -> MarketPoll:
    """Fetch, parse and store one source; a failure raises (the job records it)."""
    result = MarketPoll(market_source_name(source.series))
    before = client.requests_sent
    response = conditional_get(client, db, source.url)
    if not response.not_modified:
        observations = parse(source.format, response.content, source.url)
        result.observations = len(observations)
        result.changed = store.save_observations(db, source.series, observations, source.url)
        remember(db, source.url, response)
    result.requests = client.requests_sent - before
    store.record_poll(db, result.source, ok=True, added=result.changed)
    return result
