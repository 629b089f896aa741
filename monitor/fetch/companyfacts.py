"""SEC's XBRL company facts: a company's reported revenue, for the AI mix's trailing mining revenue.

``https://data.sec.gov/api/xbrl/companyfacts/CIK##########.json`` holds every XBRL fact a company has
filed. The monitor keeps only revenue facts (the concepts below, in USD, with a start and an end), read
through the same fair-access client as every SEC request, with a conditional GET, and stores them in
``company_facts`` in one transaction per company. For a bitcoin miner, reported revenue is mostly mining
revenue (hosting, where there is any, is in it too): the AI mix reads it as trailing mining revenue and
says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import sqlite_utils

from monitor import store
from monitor.config import Config
from monitor.errors import ParseError
from monitor.fetch.conditional import conditional_get, remember
from monitor.fetch.http import HttpClient
from monitor.fetch.result import PollResult

# Tried in this order: the first concept a company reports is its revenue line.
REVENUE_CONCEPTS = ("RevenueFromContractWithCustomerExcludingAssessedTax", "Revenues",
                    "RevenueFromContractWithCustomerIncludingAssessedTax", "SalesRevenueNet")


@dataclass(frozen=True)
class RevenueFact:
    concept: str
    start: date
    end: date
    value: float
    form: str
    filed: str
    accession: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def companyfacts_source(ticker: str) -> str:
    return f"edgar:companyfacts:{ticker}"


def companyfacts_url(config: Config, cik: int) -> str:
    return f"{config.sec.data_url}/api/xbrl/companyfacts/CIK{cik:010d}.json"


def parse_revenue(payload: bytes, source: str) -> list[RevenueFact]:
    """The revenue facts of a company-facts payload (USD, with a period), or ParseError naming the source."""
    try:
        data = json.loads(payload)
        gaap = data["facts"].get("us-gaap", {})
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ParseError(source, f"not a company-facts payload: {exc}") from None
    found: dict[tuple[str, str, str], RevenueFact] = {}
    for concept in REVENUE_CONCEPTS:
        units = gaap.get(concept, {}).get("units", {}) if isinstance(gaap.get(concept), dict) else {}
        for item in units.get("USD", []) if isinstance(units, dict) else []:
            fact = _fact(concept, item)
            if fact is not None:  # the same period in several filings: the latest filing stands
                key = (concept, fact.start.isoformat(), fact.end.isoformat())
                if key not in found or found[key].filed <= fact.filed:
                    found[key] = fact
    return sorted(found.values(), key=lambda f: (f.concept, f.end, f.start))


def _fact(concept: str, item: object) -> RevenueFact | None:
    if not isinstance(item, dict):
        return None
    try:
        start, end = date.fromisoformat(str(item["start"])), date.fromisoformat(str(item["end"]))
        value = float(item["val"])
    except (KeyError, ValueError, TypeError):
        return None  # an instant, or a value that is not a number: not a period's revenue
    if end <= start:
        return None
    return RevenueFact(concept, start, end, value, str(item.get("form", "")), str(item.get("filed", "")),
                       str(item.get("accn", "")))


def fetch_revenue(client: HttpClient, db: sqlite_utils.Database, config: Config, ticker: str, cik: int) -> PollResult:
    """Fetch a company's facts (conditional GET) and replace its stored revenue facts in one transaction."""
    source = companyfacts_source(ticker)
    result = PollResult(source)
    before = client.requests_sent
    url = companyfacts_url(config, cik)
    response = conditional_get(client, db, url)
    if not response.not_modified:
        facts = parse_revenue(response.content, url)
        store.save_revenue_facts(db, ticker, url, facts)
        remember(db, url, response)
        result.filings_seen = len(facts)
    result.requests = client.requests_sent - before
    store.record_poll(db, source, ok=True, added=0)
    return result
