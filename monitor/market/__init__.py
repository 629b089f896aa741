"""Market data: daily series (BTC, credit spreads, rates, stock closes) beside the filings.

Series names, one per thing measured whatever source fed it:

    btc_usd     Bitcoin close in US dollars (the UTC day's close: CoinGecko's "D 00:00 UTC"
                price is stored under day D-1, see ``series``)
    hy_oas      ICE BofA US High Yield Index option-adjusted spread (FRED BAMLH0A0HYM2), percent
    ust_10y     10-year US Treasury constant-maturity yield (FRED DGS10), percent
    px:TICKER   a stock's or ETF's daily close in its currency, e.g. "px:MARA", "px:IBIT"

Other lower-case names (``[a-z][a-z0-9_]*``) are accepted for series not listed here.
A stored observation is (series, ISO day, value); a day has one value per series, and a later
answer for the same day (a revised FRED print, the close replacing an intraday Stooq row)
replaces the earlier one.

    series.py   pure parsers: bytes of a known format → sorted Observation(day, value), one per day
    replay.py   the bundled real files of data/samples/market/ through the same parsers (offline)
    fetch.py    the configured sources ([market] in config.toml) through the shared HTTP client
"""

from monitor.market.series import FORMATS, Observation, check_series_name, parse

__all__ = ["FORMATS", "Observation", "check_series_name", "parse"]
