"""A CoinGecko market_chart answer built from the real CoinGecko CSV export.

No real answer of the CoinGecko API is bundled, so tests of the ``coingecko_json`` format use this: the
API's shape (``{"prices": [[unix_ms, price], ...], ...}``) holding the export's real stamps and prices.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.conftest import SAMPLES

COINGECKO_BTC = SAMPLES / "market" / "BTC-USD_coingecko_daily_2024-01-01_2025-09-11.csv"


def coingecko_json(rows: int, live_price: float | None = None) -> bytes:
    """The first ``rows`` real rows as [unix ms of the stamp, price]; ``live_price`` adds the API's last
    point, the price at request time (13 h 0.1 s after the last midnight), as the API does."""
    points = []
    for line in COINGECKO_BTC.read_text().split("\n")[1:rows + 1]:
        stamp, price = line.split(",")[:2]
        moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
        points.append([int(moment.timestamp() * 1000), float(price)])
    if live_price is not None:
        points.append([points[-1][0] + 13 * 3_600_000 + 1234, live_price])
    return json.dumps({"prices": points, "market_caps": [], "total_volumes": []}).encode()
